"""Recipes end to end on tiny settings: the run directory, chaining runs, resume."""

import json

import pytest
import yaml

from protege.errors import ConfigError
from protege.pipeline import run_recipe
from protege.recipe_reader import recipe_from_dict

TINY = {
    "name": "tiny",
    "seed": 0,
    "data": {"source": "digits", "test_fraction": 0.3},
    "teacher": {"model": {"source": "cnn2d", "width": 8}, "train": {"epochs": 2, "batch_size": 128, "lr": 0.01}},
    "student": {
        "model": {"source": "mlp", "hidden": 8},
        "objective": {"name": "kd", "temperature": 3, "alpha": 0.8},
        "train": {"epochs": 2, "batch_size": 128, "lr": 0.01},
        "baseline": True,
    },
    "evaluate": {"latency_batch_sizes": [1]},
}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    return run_recipe(recipe_from_dict(TINY), run_dir)


def test_run_directory_layout(tiny_run):
    run_dir = tiny_run.run_dir
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["student"]["objective"]["name"] == "kd"
    for stage in ("teacher", "student_baseline", "student"):
        assert (run_dir / stage / "model" / "model.safetensors").is_file()
        assert json.loads((run_dir / stage / "model" / "model.json").read_text())["format"] == "protege-model"
        assert (run_dir / stage / "checkpoints" / "latest").is_file()
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [(r["stage"], r["epoch"]) for r in lines] == [
        ("teacher", 1),
        ("teacher", 2),
        ("student_baseline", 1),
        ("student_baseline", 2),
        ("student", 1),
        ("student", 2),
    ]
    assert "train_kd" in lines[-1] and "val_accuracy" in lines[-1]
    assert not (run_dir / "tensorboard").exists() and not (run_dir / "mlruns").exists()  # tracking is off by default


def test_report_has_every_model_and_the_comparison(tiny_run):
    report = json.loads((tiny_run.run_dir / "report.json").read_text())
    assert set(report["models"]) == {"teacher", "student_baseline", "student"}
    student = report["models"]["student"]
    for key in (
        "accuracy",
        "nll",
        "agreement",
        "kl_to_teacher",
        "parameters",
        "flops_per_example",
        "latency_ms",
        "file_bytes",
        "accuracy_retained",
        "compression",
        "macro_f1",
        "ece",
        "confusion_matrix",
        "per_class_accuracy",
        "reliability",
        "throughput_per_s",
        "speedup",
        "title",
    ):
        assert key in student, key
    assert student["title"] == "student distilled"
    assert set(report["fairness"]) == {"student_baseline", "student"}
    assert [r["epoch"] for r in report["history"]["student"]] == [1, 2]
    assert set(report["history"]) == {"teacher", "student_baseline", "student"}
    page = (tiny_run.run_dir / "report.html").read_text()
    assert "student distilled" in page and "Learning curves" in page
    assert student["training"]["teacher_mode"] == "cached (memory)"
    assert report["data"]["sizes"]["test"] == 540
    assert student["parameters"] < report["models"]["teacher"]["parameters"]


def test_a_run_is_a_model_source_for_the_next(tiny_run, tmp_path):
    raw = {
        "name": "chain",
        "data": TINY["data"],
        "teacher": {"model": {"source": f"run:{tiny_run.run_dir / 'teacher'}"}},
        "student": {"model": {"source": "mlp", "hidden": 8}, "objective": {"name": "kd"}, "train": {"epochs": 1}},
        "evaluate": {"latency": False},
    }
    result = run_recipe(recipe_from_dict(raw), tmp_path / "chain")
    first = json.loads((tiny_run.run_dir / "report.json").read_text())["models"]["teacher"]["accuracy"]
    assert result.report["models"]["teacher"]["accuracy"] == pytest.approx(first)


def test_existing_run_dir_needs_resume_or_overwrite(tiny_run):
    with pytest.raises(ConfigError, match="already exists"):
        run_recipe(recipe_from_dict(TINY), tiny_run.run_dir)


def test_resume_with_another_recipe_is_refused(tiny_run):
    other = dict(TINY, seed=5)
    with pytest.raises(ConfigError, match="different recipe"):
        run_recipe(recipe_from_dict(other), tiny_run.run_dir, resume=True)


def test_resume_of_a_finished_run_loads_every_stage(tiny_run):
    lines_before = (tiny_run.run_dir / "metrics.jsonl").read_text()
    result = run_recipe(recipe_from_dict(TINY), tiny_run.run_dir, resume=True)
    assert all(stage.fit is None for stage in result.stages.values())
    assert result.report["models"]["student"]["accuracy"] == pytest.approx(
        tiny_run.report["models"]["student"]["accuracy"]
    )
    assert (tiny_run.run_dir / "metrics.jsonl").read_text() == lines_before


def test_overwrite_refuses_a_directory_that_is_not_a_run(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not a protege run directory"):
        run_recipe(recipe_from_dict(TINY), tmp_path, overwrite=True)
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_teacher_with_other_classes_is_refused(tiny_run, tmp_path):
    import numpy as np

    from protege.errors import ModelError

    path = tmp_path / "three.npz"
    np.savez(path, x=np.zeros((30, 1, 8, 8), dtype=np.float32), y=np.arange(30) % 3)
    raw = {
        "data": {"source": f"npz:{path}"},
        "teacher": {"model": {"source": f"run:{tiny_run.run_dir}/teacher"}},
        "student": {"model": {"source": "mlp"}, "objective": {"name": "kd"}, "train": {"epochs": 1}},
    }
    with pytest.raises(ModelError, match="predicts 10 classes but the data has 3"):
        run_recipe(recipe_from_dict(raw), tmp_path / "x")


def test_teacher_with_other_input_shape_is_refused(tiny_run, tmp_path):
    raw = {
        "data": {"source": "mnist1d", "options": {"num_samples": 200}},
        "teacher": {"model": {"source": f"run:{tiny_run.run_dir}/teacher"}},
        "student": {"model": {"source": "mlp"}, "objective": {"name": "kd"}, "train": {"epochs": 1}},
    }
    from protege.errors import ModelError

    with pytest.raises(ModelError, match="inputs of shape"):
        run_recipe(recipe_from_dict(raw), tmp_path / "x")
