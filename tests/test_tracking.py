"""TensorBoard and MLflow loggers: switched on in a recipe, they hold every epoch of metrics.jsonl."""

import json

import pytest

from protege.errors import ConfigError
from protege.pipeline import run_recipe
from protege.recipe_reader import recipe_from_dict

RECIPE = {
    "name": "tracked",
    "data": {"source": "digits", "test_fraction": 0.3},
    "teacher": {"model": {"source": "mlp", "hidden": 8}, "train": {"epochs": 2, "batch_size": 256}},
    "evaluate": {"latency": False, "html": False},
    "track": {"tensorboard": True, "mlflow": True, "experiment": "protege-tests"},
}


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    return run_recipe(recipe_from_dict(RECIPE), tmp_path_factory.mktemp("runs") / "tracked")


def _epochs(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_tensorboard_holds_every_epoch_and_the_test_metrics(tracked):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tracked.run_dir / "tensorboard"))
    events.Reload()
    logged = events.Scalars("teacher/train_loss")
    expected = [(r["epoch"], r["train_loss"]) for r in _epochs(tracked.run_dir)]
    assert [(e.step, pytest.approx(e.value, rel=1e-6)) for e in logged] == expected
    assert "teacher/val_accuracy" in events.Tags()["scalars"]
    test_accuracy = events.Scalars("test/teacher/accuracy")[0].value
    assert test_accuracy == pytest.approx(tracked.report["models"]["teacher"]["accuracy"], rel=1e-6)


def test_mlflow_file_store_holds_the_run(tracked):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=(tracked.run_dir / "mlruns").resolve().as_uri())
    experiment = client.get_experiment_by_name("protege-tests")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "tracked"
    assert run.data.params["teacher.train.epochs"] == "2"
    history = client.get_metric_history(run.info.run_id, "teacher/val_loss")
    expected = [(r["epoch"], r["val_loss"]) for r in _epochs(tracked.run_dir)]
    assert sorted((m.step, pytest.approx(m.value)) for m in history) == expected
    assert run.data.metrics["test/teacher/accuracy"] == pytest.approx(tracked.report["models"]["teacher"]["accuracy"])


def test_track_block_is_validated():
    with pytest.raises(ConfigError, match=r'track\.tensorbord: unknown field \(did you mean "tensorboard"'):
        recipe_from_dict({**RECIPE, "track": {"tensorbord": True}})
