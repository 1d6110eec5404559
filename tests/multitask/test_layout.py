"""The tasks' layout and metrics: each task's metrics read its slice of the outputs and targets (checked
against hand computation), the average score averages them, the summed batches give the whole split's
values, and a data source's label columns become the tasks' targets."""

import re

import numpy as np
import pytest
import torch

from protege.data.build import load_data
from protege.errors import ConfigError, DataError
from protege.multitask.config import MultitaskConfig
from protege.multitask.data import TaskTargets
from protege.multitask.layout import TaskSpec, multitask_type, split_outputs

TASKS = [TaskSpec("digit", "classification", ("0", "1", "2"), 0), TaskSpec("size", "regression", ("size",), 1)]


def _batch():
    outputs = torch.tensor([[2.0, 0.1, 0.0, 1.5], [0.0, 3.0, 0.2, 2.0], [0.1, 0.0, 1.0, 0.0], [1.0, 0.0, 4.0, 3.0]])
    y = torch.tensor([[0.0, 1.0], [1.0, 2.0], [1.0, 0.5], [0.0, 3.5]])
    return outputs, y


def test_each_tasks_metrics_and_the_average_against_hand_computation():
    outputs, y = _batch()
    task = multitask_type(TASKS)
    assert task.metric("digit_accuracy").compute(outputs, y) == pytest.approx(2 / 4)  # argmax 0, 1, 2, 2
    assert task.metric("size_mae").compute(outputs, y) == pytest.approx((0.5 + 0 + 0.5 + 0.5) / 4)
    truth = np.array([1.0, 2.0, 0.5, 3.5])
    r2 = 1 - ((np.array([1.5, 2.0, 0.0, 3.0]) - truth) ** 2).sum() / ((truth - truth.mean()) ** 2).sum()
    assert task.metric("size_r2").compute(outputs, y) == pytest.approx(r2, rel=1e-5)
    assert task.metric("mean_score").compute(outputs, y) == pytest.approx((0.5 + r2) / 2, rel=1e-5)
    assert task.val_metrics == ("digit_accuracy", "size_mae", "size_rmse", "size_r2", "mean_score")


def test_summed_batches_give_the_whole_splits_values():
    outputs, y = _batch()
    task = multitask_type(TASKS)
    mask = torch.ones(2, dtype=torch.bool)
    for name in task.val_metrics:
        metric = task.metric(name)
        stats = metric.stats(outputs[:2], y[:2], mask) + metric.stats(outputs[2:], y[2:], mask)
        assert metric.from_stats(stats) == pytest.approx(metric.compute(outputs, y), rel=1e-5), name


def test_the_loss_sums_each_tasks_loss_and_predictions_read_each_slice():
    outputs, y = _batch()
    task = multitask_type(TASKS)
    ce = torch.nn.functional.cross_entropy(outputs[:, :3], y[:, 0].long(), reduction="sum")
    mse = (outputs[:, 3] - y[:, 1]).pow(2).sum()
    assert task.loss_sum(outputs, y).item() == pytest.approx((ce + mse).item(), rel=1e-5)
    predicted = task.predict(outputs)
    torch.testing.assert_close(predicted[:, :3], outputs[:, :3].softmax(-1))
    torch.testing.assert_close(predicted[:, 3], outputs[:, 3])
    assert set(split_outputs(TASKS, outputs)) == {"digit", "size"}


def test_monitor_names_a_tasks_metric_or_the_average():
    task = multitask_type(TASKS, "val_size_mae")
    assert task.monitored("val_size_mae") == ("val_size_mae", False)
    assert task.monitored("val_mean_score") == ("val_mean_score", True)
    with pytest.raises(ConfigError, match='did you mean "val_digit_accuracy"'):
        task.monitored("val_digt_accuracy")


def _csv(tmp_path, rows):
    path = tmp_path / "d.csv"
    path.write_text("a,b,colour,weight\n" + "\n".join(rows) + "\n")
    return path


def _config(*tasks):
    return MultitaskConfig(tasks=[dict(zip(("name", "columns", "type"), t, strict=True)) for t in tasks])


def test_a_csv_gives_each_task_its_columns(tmp_path):
    rows = [f"{i % 3},{i % 5},{'red' if i % 2 else 'blue'},{i / 10}" for i in range(20)]
    path = _csv(tmp_path, rows)
    config = _config(("colour", "colour", "classification"), ("weight", "weight", "regression"))
    targets = TaskTargets(config)
    options = {"label_columns": ["colour", "weight"]}
    data = load_data(f"csv:{path}", options, val_fraction=0, task="multitask", targets=targets)
    assert data.class_names == ["colour:blue", "colour:red", "weight:weight"]
    assert [s.target_start for s in targets.specs] == [0, 1]
    assert data.train.y.shape[1] == 2 and data.train.y.dtype == torch.float32


def test_a_missing_column_and_a_word_for_a_value_are_one_line_errors(tmp_path):
    rows = [f"{i},{i},red,{'heavy' if i == 3 else i}" for i in range(10)]
    path = _csv(tmp_path, rows)
    config = _config(("colour", "color", "classification"))
    with pytest.raises(DataError, match=re.escape("reads column 'color', which the data does not have (did you mean")):
        load_data(
            f"csv:{path}",
            {"label_columns": ["colour"], "feature_columns": ["a", "b"]},
            task="multitask",
            targets=TaskTargets(config),
        )
    config = _config(("weight", "weight", "regression"))
    with pytest.raises(DataError, match="'heavy' is not a number"):
        load_data(
            f"csv:{path}",
            {"label_columns": ["weight"], "feature_columns": ["a", "b"]},
            task="multitask",
            targets=TaskTargets(config),
        )
