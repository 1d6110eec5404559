"""report.json assembled from models in memory, and report.html rendered from it (no browser here)."""

import json

import pytest
import torch

from protege.config import EvaluateConfig
from protege.models import build_model
from protege.report.html import render_html, write_html
from protege.report.summary import assemble_report, print_summary


@pytest.fixture
def report(blobs):
    blobs.class_names = ["a", "<b>", "c"]
    blobs.test_groups = ["left" if i % 2 else "right" for i in range(len(blobs.test))]
    torch.manual_seed(0)
    teacher = build_model("mlp", {"hidden": 16}, blobs.input_shape, blobs.class_names)
    student = build_model("mlp", {"hidden": 4}, blobs.input_shape, blobs.class_names)
    models = {"teacher": (teacher.module, teacher.card, None), "student": (student.module, student.card, None)}
    history = {"student": [{"epoch": 1, "train_loss": 1.0, "val_loss": 1.1, "train_accuracy": 0.5}]}
    config = EvaluateConfig(latency_batch_sizes=[1, 4])
    return assemble_report(
        models, blobs, config, name="r", seed=0, seconds=1.0, titles={"student": "student distilled"}, history=history
    )


def test_report_has_the_documented_keys(report):
    student = report["models"]["student"]
    for key in ("accuracy", "macro_f1", "nll", "ece", "per_class_accuracy", "confusion_matrix", "reliability"):
        assert key in student, key
    for key in ("agreement", "kl_to_teacher", "accuracy_retained", "compression", "speedup", "throughput_per_s"):
        assert key in student, key
    assert set(student["latency_ms"]) == {"1", "4"} and student["title"] == "student distilled"
    assert student["throughput_per_s"]["4"] == pytest.approx(4e3 / student["latency_ms"]["4"])
    assert sum(map(sum, student["confusion_matrix"])) == 30
    assert set(student["per_group_accuracy"]) == {"left", "right"}
    fairness = report["fairness"]["student"]
    assert [r["name"] for r in fairness["per_class"]["rows"]] == ["a", "<b>", "c"]
    assert {r["name"] for r in fairness["per_group"]["rows"]} == {"left", "right"}
    assert report["data"]["groups"] == ["left", "right"]
    assert report["evaluation"]["latency_batch_sizes"] == [1, 4] and report["evaluation"]["latency_min_repeats"] == 15
    json.dumps(report)  # plain JSON all the way down


def test_page_is_self_contained_and_escapes_names(report, tmp_path):
    page = render_html(report)
    assert "<table class='summary quality'>" in page and "id='summary'" in page
    for section in ("Accuracy versus latency", "Learning curves", "Calibration", "Confusion matrices"):
        assert f"<h2>{section}</h2>" in page
    assert "per group" in page and "student distilled" in page
    assert "&lt;b&gt;" in page and "<b>" not in page.replace("<b>none</b>", "")
    assert "http:" not in page and "https:" not in page and "<script" not in page
    assert page.count("src='data:image/svg+xml;base64,") == 5
    write_html(tmp_path / "report.html", report)
    assert (tmp_path / "report.html").read_text() == page


def test_page_without_teacher_history_or_latency(blobs):
    model = build_model("mlp", {"hidden": 4}, blobs.input_shape, blobs.class_names)
    report = assemble_report(
        {"student": (model.module, model.card, None)},
        blobs,
        EvaluateConfig(latency=False),
        name="r",
        seed=0,
        seconds=1.0,
    )
    page = render_html(report)
    assert "Latency was not measured" in page and "Learning curves" not in page and "Fairness" not in page
    assert report["fairness"] == {} and "latency_ms" not in report["models"]["student"]


def test_terminal_names_flagged_classes(report, capsys, monkeypatch):
    monkeypatch.setenv("PROTEGE_QUIET", "0")
    report["fairness"]["student"]["per_class"]["flagged"] = ["<b>"]
    print_summary(report)
    captured = capsys.readouterr()
    assert "student distilled" in captured.out and "latency b4" in captured.out
    assert "fairness: student distilled lost more than 5% beyond its average drop on: <b>" in captured.err
