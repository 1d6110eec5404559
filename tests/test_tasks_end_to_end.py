"""Regression and multi-label recipes end to end, on tiny settings: teacher, student alone and student
distilled on a transfer set; report.json and report.html with the task's metrics; export to ONNX
(checked against onnxruntime before it is written); predict prints values or labels; evaluate agrees."""

import json

import numpy as np
import pytest

from protege.cli import main
from protege.export import export_model
from protege.pipeline import run_recipe
from protege.predict import predict
from protege.recipe_reader import load_recipe

SETTINGS = [
    "--set", "teacher.train.epochs=8", "--set", "student.train.epochs=3", "--set", "student.baseline.epochs=8",
    "--set", "evaluate.latency=false",
]  # fmt: skip


@pytest.fixture(scope="module", params=["regression", "multilabel"])
def run(request, tmp_path_factory):
    overrides = [item for item in SETTINGS if item != "--set"]
    if request.param == "regression":
        overrides += ["data.options.num_samples=300", "transfer.options.num_samples=2000"]
    else:
        overrides += ["data.options.num_samples=400", "transfer.options.num_samples=2000"]
    recipe = load_recipe(f"recipes/{request.param}.yaml", overrides)
    out = tmp_path_factory.mktemp(request.param) / "run"
    return request.param, run_recipe(recipe, out)


METRICS = {"regression": ("mae", "rmse", "r2"), "multilabel": ("micro_f1", "macro_f1", "map")}


def test_the_report_has_the_tasks_metrics_and_roles(run):
    task, result = run
    report = json.loads((result.run_dir / "report.json").read_text())
    assert report["task"] == task and report["reference"] == "teacher"
    assert {m: report["models"][m]["role"] for m in report["models"]} == {
        "teacher": "teacher", "student_baseline": "baseline", "student": "student",
    }  # fmt: skip
    for entry in report["models"].values():
        assert all(isinstance(entry[key], float) for key in METRICS[task])
        assert "confusion_matrix" not in entry
    against = "rmse_to_teacher" if task == "regression" else "agreement"
    assert against in report["models"]["student"] and report["fairness"] == {}
    page = (result.run_dir / "report.html").read_text()
    assert ("Predictions" if task == "regression" else "F1 per label") in page and "Confusion" not in page
    history = report["history"]["student"][-1]
    assert ("val_mae" if task == "regression" else "val_micro_f1") in history


def test_the_onnx_export_predicts_what_pytorch_predicts(run, tmp_path):
    task, result = run
    exported = export_model(result.run_dir, "onnx", output=tmp_path / "model.onnx")
    assert exported.max_abs_diff < 1e-4
    x = result.stages["student"].card.input_shape
    inputs = np.random.default_rng(0).random((4, *x)).astype(np.float32)
    from_file, from_run = predict(exported.path, inputs), predict(result.run_dir, inputs)
    if task == "regression":
        assert from_file[0].values is not None and list(from_file[0].values) == ["y"]
        for a, b in zip(from_file, from_run, strict=True):
            assert a.values["y"] == pytest.approx(b.values["y"], abs=1e-4)
    else:
        assert all(p.labels is not None for p in from_file)
        assert [p.labels for p in from_file] == [p.labels for p in from_run]


def test_predict_prints_values_or_labels(run, tmp_path, capsys):
    task, result = run
    x = result.stages["student"].card.input_shape
    np.save(tmp_path / "in.npy", np.ones((2, *x), dtype=np.float32))
    capsys.readouterr()
    assert main(["predict", str(result.run_dir), str(tmp_path / "in.npy"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert ("values" in rows[0]) == (task == "regression") and ("labels" in rows[0]) == (task == "multilabel")


def test_evaluate_of_the_run_gives_the_runs_numbers(run, tmp_path):
    task, result = run
    assert main(["evaluate", str(result.run_dir), "--no-latency", "--no-html", "-o", str(tmp_path)]) == 0
    again = json.loads((tmp_path / "report.json").read_text())
    for name, entry in result.report["models"].items():
        for key in METRICS[task]:
            assert again["models"][name][key] == pytest.approx(entry[key], rel=1e-5)
