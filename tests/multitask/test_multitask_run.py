"""Multi-task recipes end to end: single-task teachers, the multi-head student distilled head by head; the
tasks in the cards; per-task metrics and their average in metrics.jsonl, report.json, the printed table and
report.html; export of every head; predict per task; saved teachers loaded; the bundled recipe; resume in
the middle of a stage gives the same numbers."""

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open
from tests.interrupt import StepCounter, Stop

from protege.cli import main
from protege.export import export_model, read_exported
from protege.models import load_run_model
from protege.models.store import read_card
from protege.pipeline import run_recipe as run
from protege.recipe_reader import recipe_from_dict

TRAIN = {"epochs": 3, "batch_size": 32, "lr": 0.003, "schedule": "constant"}
TASKS = [
    {"name": "left", "columns": "left"},
    {"name": "right", "columns": "right"},
    {"name": "sum", "columns": "sum", "type": "regression", "weight": 0.05},
]


def _recipe(combine="pcgrad", teacher=True, **multitask):
    raw = {
        "name": "mt",
        "data": {"source": "multidigits", "options": {"num_samples": 500}, "standardize": True},
        "multitask": {"tasks": TASKS, "combine": combine, **multitask},
        "student": {"model": {"source": "mlp", "hidden": 32}, "train": dict(TRAIN)},
        "evaluate": {"latency": False},
    }
    if teacher:
        raw["teacher"] = {"model": {"source": "mlp", "hidden": 48}, "train": dict(TRAIN)}
    return recipe_from_dict(raw)


@pytest.fixture(scope="module")
def mt_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("multitask") / "run"
    return out, run(_recipe(), output_dir=out)


def test_every_model_has_its_tasks_metrics_and_their_average(mt_run):
    out, _ = mt_run
    report = json.loads((out / "report.json").read_text())
    block = report["multitask"]
    assert set(block["models"]) == {"teacher_left", "teacher_right", "teacher_sum", "student"}
    student = block["models"]["student"]
    assert set(student["tasks"]) == {"left", "right", "sum"}
    scores = [
        student["tasks"]["left"]["accuracy"],
        student["tasks"]["right"]["accuracy"],
        student["tasks"]["sum"]["r2"],
    ]
    assert student["mean_score"] == pytest.approx(sum(scores) / 3)
    assert report["models"]["student"]["mean_score"] == student["mean_score"]
    assert set(block["models"]["teacher_sum"]["tasks"]) == {"sum"}
    assert block["student_vs_teachers"]["left"]["teacher"] == block["models"]["teacher_left"]["tasks"]["left"]["score"]
    assert all(0.15 < student["tasks"][t]["accuracy"] <= 1 for t in ("left", "right"))  # above chance (0.1) in 3 epochs


def test_the_training_records_hold_each_tasks_validation_metrics(mt_run):
    out, _ = mt_run
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    student = [r for r in records if r["stage"] == "student"]
    assert len(student) == 3
    for key in ("val_left_accuracy", "val_right_accuracy", "val_sum_mae", "val_sum_r2", "val_mean_score",
                "train_mean_score", "train_left", "train_right", "train_sum"):  # fmt: skip
        assert key in student[-1], key
    teacher = [r for r in records if r["stage"] == "teacher_left"][-1]
    assert "val_left_accuracy" in teacher and "val_right_accuracy" not in teacher


def test_the_cards_record_the_tasks_and_the_student_was_distilled(mt_run):
    out, _ = mt_run
    card = read_card(out / "student" / "model")
    assert [t["name"] for t in card.tasks] == ["left", "right", "sum"]
    assert [t["type"] for t in card.tasks] == ["classification", "classification", "regression"]
    assert card.tasks[0]["names"] == [str(d) for d in range(10)] and card.tasks[2]["names"] == ["sum"]
    assert card.class_names[:2] == ["left:0", "left:1"] and card.data["task"] == "multitask"
    assert card.metrics["teacher_mode"] == "cached (memory)" and card.metrics["multitask"]["combine"] == "pcgrad"
    assert [t["name"] for t in read_card(out / "teacher_sum" / "model").tasks] == ["sum"]
    module = load_run_model(f"run:{out}/student/model", None, None).module
    assert list(module.head.heads) == ["left", "right", "sum"]


def test_the_page_and_the_table_show_every_task(mt_run, monkeypatch, capsys):
    out, _ = mt_run
    page = (out / "report.html").read_text()
    assert "Multi-task" in page and "left accuracy" in page and "sum r2" in page
    monkeypatch.setenv("PROTEGE_QUIET", "0")
    from protege.report.summary import print_summary

    print_summary(json.loads((out / "report.json").read_text()))
    printed = capsys.readouterr().out
    assert "combine pcgrad" in printed and "mean score" in printed


@pytest.mark.parametrize("fmt", ["onnx", "torchscript", "safetensors"])
def test_every_head_is_exported(mt_run, tmp_path, fmt):
    out, result = mt_run
    suffix = {"onnx": ".onnx", "torchscript": ".pt", "safetensors": ".safetensors"}[fmt]
    exported = export_model(out, fmt, stage="student", output=tmp_path / f"m{suffix}")
    loaded = read_exported(exported.path)
    x = result.stages["student"].model.eval()
    inputs = torch.randn(5, 1, 8, 14)
    with torch.no_grad():
        expected = x(inputs).numpy()
    np.testing.assert_allclose(loaded.logits(inputs.numpy()), expected, rtol=1e-4, atol=1e-5)
    assert [t["name"] for t in loaded.card.tasks] == ["left", "right", "sum"]
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(exported.path), providers=["CPUExecutionProvider"])
        assert [o.name for o in session.get_outputs()] == ["left", "right", "sum"]
        left, _, total = session.run(None, {"input": inputs.numpy()})
        np.testing.assert_allclose(left, expected[:, :10], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(total, expected[:, 20:], rtol=1e-4, atol=1e-5)


def test_predict_prints_each_tasks_prediction(mt_run, tmp_path, capsys):
    out, _ = mt_run
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((2, 1, 8, 14)).astype(np.float32))
    capsys.readouterr()
    assert main(["predict", str(out), str(tmp_path / "x.npy"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert set(rows[0]["tasks"]) == {"left", "right", "sum"}
    assert rows[0]["tasks"]["left"]["class"] in [str(d) for d in range(10)]
    assert isinstance(rows[0]["tasks"]["sum"]["sum"], float)


def test_saved_teachers_are_loaded_instead_of_trained(mt_run, tmp_path):
    out, _ = mt_run
    sources = {"left": f"run:{out}/teacher_left", "sum": f"run:{out}/teacher_sum"}
    result = run(_recipe("equal", teacher_sources=sources), output_dir=tmp_path / "again")
    trained = [
        name for name in ("teacher_left", "teacher_right", "teacher_sum") if (tmp_path / "again" / name).exists()
    ]
    assert trained == ["teacher_right"]
    block = result.report["multitask"]
    first = json.loads((out / "report.json").read_text())["multitask"]
    assert block["models"]["teacher_left"] == first["models"]["teacher_left"]


def test_the_bundled_recipe_runs(tmp_path):
    short = ["--set", "teacher.train.epochs=1", "--set", "student.train.epochs=1", "--set", "evaluate.latency=false",
             "--set", "data.options.num_samples=300"]  # fmt: skip
    assert main(["run", "multitask", "-o", str(tmp_path / "run"), *short]) == 0
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["multitask"]["combine"] == "pcgrad" and report["task"] == "multitask"


def _timeless(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


@pytest.mark.parametrize("combine", ["uncertainty", "upgrad"])
def test_resume_in_the_middle_of_the_student_gives_the_same_numbers(tmp_path, monkeypatch, combine):
    recipe = _recipe(combine, teacher=False)
    recipe.student.train.checkpoint_every = 4
    calls = StepCounter(monkeypatch)
    whole = run(recipe, output_dir=tmp_path / "whole").report
    steps = calls.n
    stop = steps // 2 + 2  # in the second epoch, between checkpoints
    calls.reset(stop)
    with pytest.raises(Stop):
        run(recipe, output_dir=tmp_path / "cut")
    calls.reset()
    resumed = run(recipe, output_dir=tmp_path / "cut", resume=True).report
    assert steps - stop < calls.n <= steps - stop + 4
    assert resumed["multitask"]["models"] == whole["multitask"]["models"]
    assert _timeless(resumed["history"]["student"]) == _timeless(whole["history"]["student"])
    saved = safe_open(str(tmp_path / "cut" / "student" / "model" / "model.safetensors"), "pt").keys()
    assert not any("log_variance" in key for key in saved)  # uncertainty's weights train, checkpoint, stay out
    if combine == "uncertainty":  # the checkpoints keep the learnt log-variances beside the model
        parts = next((tmp_path / "cut" / "student" / "checkpoints").glob("step-*/objective.safetensors"))
        assert list(safe_open(str(parts), "pt").keys()) == ["log_variance"]


def test_evaluate_of_the_run_gives_the_runs_per_task_numbers(mt_run, tmp_path):
    from protege.config import EvaluateConfig
    from protege.report.standalone import evaluate_saved

    out, _ = mt_run
    report = evaluate_saved(str(out), None, EvaluateConfig(latency=False, html=False), output_dir=tmp_path / "eval")
    assert report["multitask"]["models"] == json.loads((out / "report.json").read_text())["multitask"]["models"]


def test_the_dry_run_lists_each_teacher_and_the_students_combination(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PROTEGE_QUIET", "0")
    path = tmp_path / "r.yaml"
    import yaml

    path.write_text(yaml.safe_dump(_recipe("upgrad").model_dump(mode="json")))
    assert main(["run", str(path), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "teacher_left" in printed and "teacher_sum" in printed and "upgrad over left" in printed
    assert not (tmp_path / "runs").exists()
