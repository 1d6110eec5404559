"""``protege evaluate``: a run directory on its own test split, one model against a teacher on --data."""

import json

import pytest

from protege.cli import main
from protege.pipeline import run_recipe
from protege.recipe_reader import recipe_from_dict

RECIPE = {
    "name": "evalme",
    "data": {"source": "digits", "test_fraction": 0.3, "standardize": True},
    "teacher": {"model": {"source": "cnn2d", "width": 8}, "train": {"epochs": 1, "batch_size": 256}},
    "student": {
        "model": {"source": "mlp", "hidden": 8},
        "objective": {"name": "kd"},
        "train": {"epochs": 1, "batch_size": 256},
    },
    "evaluate": {"latency": False, "html": False},
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return run_recipe(recipe_from_dict(RECIPE), tmp_path_factory.mktemp("runs") / "evalme")


def test_a_run_directory_is_scored_on_its_own_test_split(run, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PROTEGE_QUIET", "0")
    assert main(["evaluate", str(run.run_dir), "--batch-sizes", "1", "--threads", "1", "-o", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert list(report["models"]) == ["teacher", "student"]
    for name in ("teacher", "student"):
        assert report["models"][name]["accuracy"] == pytest.approx(run.report["models"][name]["accuracy"])
    assert report["models"]["student"]["title"] == "student distilled"
    assert set(report["models"]["student"]["latency_ms"]) == {"1"} and report["evaluation"]["threads"] == 1
    assert report["history"]["student"][0]["epoch"] == 1
    assert "Learning curves" in (tmp_path / "report.html").read_text()
    assert "student distilled" in capsys.readouterr().out


def test_one_model_against_a_teacher_on_named_data(run, tmp_path):
    argv = ["evaluate", f"run:{run.run_dir / 'student' / 'model'}", "--data", "digits", "--test-fraction", "0.3"]
    argv += ["--teacher", str(run.run_dir / "teacher"), "--no-latency", "--no-html", "-o", str(tmp_path)]
    assert main(argv) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert list(report["models"]) == ["teacher", "model"]
    # the run standardised its inputs; evaluate applies the statistics saved with the model
    assert report["models"]["model"]["accuracy"] == pytest.approx(run.report["models"]["student"]["accuracy"])
    assert report["models"]["model"]["agreement"] == pytest.approx(run.report["models"]["student"]["agreement"])
    assert "model" in report["fairness"] and not (tmp_path / "report.html").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "name the data to evaluate it on with --data"),
        (["--data", "mnist1d", "--data-option", "num_samples=200"], "inputs of shape"),
        (["--data", "digits", "--threads", "0"], "threads"),
    ],
)
def test_user_errors_are_one_line(run, capsys, extra, message):
    assert main(["evaluate", str(run.run_dir / "student"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("protege: error: ") and err.count("\n") == 1 and message in err, err
