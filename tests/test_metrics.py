"""The metric registry against scikit-learn, and summable statistics that add up to the whole-split value."""

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score, mean_absolute_error, mean_squared_error, r2_score

from protege.metrics import get_metric, metrics_of
from protege.tasks import get_task

rng = np.random.default_rng(0)
REG_Y = torch.tensor(rng.normal(size=(40, 2)), dtype=torch.float32)
REG_P = REG_Y + torch.tensor(rng.normal(scale=0.5, size=(40, 2)), dtype=torch.float32)
ML_Y = torch.tensor(rng.integers(0, 2, size=(40, 4)), dtype=torch.float32)
ML_P = torch.tensor(rng.normal(size=(40, 4)), dtype=torch.float32) + 2 * (ML_Y - 0.5)


def test_regression_metrics_match_scikit_learn():
    y, p = REG_Y.numpy(), REG_P.numpy()
    assert get_metric("regression", "mae").compute(REG_P, REG_Y) == pytest.approx(mean_absolute_error(y, p), rel=1e-5)
    rmse = mean_squared_error(y, p) ** 0.5
    assert get_metric("regression", "rmse").compute(REG_P, REG_Y) == pytest.approx(rmse, rel=1e-5)
    assert get_metric("regression", "r2").compute(REG_P, REG_Y) == pytest.approx(r2_score(y, p), rel=1e-5)


def test_multilabel_f1_matches_scikit_learn():
    y, predicted = ML_Y.numpy(), (ML_P > 0).numpy()
    for average in ("micro", "macro"):
        value = get_metric("multilabel", f"{average}_f1").compute(ML_P, ML_Y)
        assert value == pytest.approx(f1_score(y, predicted, average=average, zero_division=0), rel=1e-5)


@pytest.mark.parametrize("task", ["classification", "multilabel", "regression"])
def test_summed_batch_statistics_equal_the_whole_split(task):
    if task == "classification":
        outputs, target = torch.randn(40, 3), torch.arange(40) % 3
    else:
        outputs, target = (REG_P, REG_Y) if task == "regression" else (ML_P, ML_Y)
    mask = torch.ones(40, dtype=torch.bool)
    for metric in metrics_of(task):
        if not metric.sums:
            continue
        pieces = [metric.stats(outputs[i : i + 7], target[i : i + 7], mask[i : i + 7]) for i in range(0, 40, 7)]
        assert metric.from_stats(sum(pieces)) == pytest.approx(metric.compute(outputs, target), rel=1e-5), metric.name


def test_unlabelled_examples_do_not_count():
    metric = get_metric("regression", "mae")
    mask = torch.tensor([True] * 20 + [False] * 20)
    expected = metric.compute(REG_P[:20], REG_Y[:20])
    assert metric.from_stats(metric.stats(REG_P, REG_Y, mask)) == pytest.approx(expected, rel=1e-6)


def test_each_task_monitors_a_metric_it_measures():
    for name in ("classification", "multilabel", "regression"):
        task = get_task(name)
        key, _ = task.monitored(task.monitor)
        assert key == task.monitor
        assert all(task.metric(m).sums for m in task.val_metrics)


def test_each_metric_knows_whether_higher_is_better():
    better = {name: get_metric(task, name).higher_is_better for task, name in
              [("classification", "accuracy"), ("classification", "macro_f1"), ("classification", "nll"),
               ("classification", "ece"), ("multilabel", "micro_f1"), ("multilabel", "macro_f1"),
               ("multilabel", "map"), ("regression", "mae"), ("regression", "rmse"), ("regression", "r2")]}  # fmt: skip
    assert better == {"accuracy": True, "macro_f1": True, "nll": False, "ece": False, "micro_f1": True,
                      "map": True, "mae": False, "rmse": False, "r2": True}  # fmt: skip
    assert get_metric("regression", "mae").better(0.1, 0.2) and not get_metric("regression", "mae").better(0.3, 0.2)
    assert get_metric("regression", "r2").better(0.3, 0.2) and get_metric("regression", "r2").better(-5.0, None)


def test_an_unknown_metric_is_one_line_naming_the_known_ones():
    from protege.errors import ConfigError

    with pytest.raises(
        ConfigError, match=r"regression has no metric 'rsme' \(did you mean \"rmse\"\?\); known: mae, rmse, r2"
    ):
        get_metric("regression", "rsme")


def test_a_metric_name_is_registered_once_per_task():
    from protege.metrics.base import Metric, register

    with pytest.raises(ValueError, match="metric 'mae' of regression is registered twice"):
        register(Metric("mae", "regression", False, lambda o, t: 0.0))


def test_mean_average_precision_matches_scikit_learn():
    from sklearn.metrics import average_precision_score

    value = get_metric("multilabel", "map").compute(ML_P, ML_Y)
    assert value == pytest.approx(average_precision_score(ML_Y.numpy(), ML_P.numpy(), average="macro"), rel=1e-5)


def test_summed_statistics_with_nothing_labelled_give_no_value():
    nothing = torch.zeros(40, dtype=torch.bool)
    assert np.isnan(
        get_metric("regression", "mae").from_stats(get_metric("regression", "mae").stats(REG_P, REG_Y, nothing))
    )
    r2 = get_metric("regression", "r2")
    one = torch.zeros(40, dtype=torch.bool)
    one[0] = True
    assert np.isnan(r2.from_stats(r2.stats(REG_P, REG_Y, one)))  # R² needs two values to have a spread
    accuracy = get_metric("classification", "accuracy")
    assert np.isnan(accuracy.from_stats(accuracy.stats(torch.randn(4, 3), torch.arange(4) % 3, nothing[:4])))


def test_regression_metrics_read_a_single_target_given_as_a_vector():
    y, p = REG_Y[:, 0], REG_P[:, :1]
    for name, expected in (("mae", mean_absolute_error(y, p[:, 0])), ("rmse", mean_squared_error(y, p[:, 0]) ** 0.5)):
        assert get_metric("regression", name).compute(p, y) == pytest.approx(expected, rel=1e-5)
    assert get_metric("regression", "r2").compute(p, y) == pytest.approx(r2_score(y, p[:, 0]), rel=1e-5)


def test_macro_f1_of_multilabel_counts_a_label_never_present_nor_predicted_as_zero():
    outputs = torch.tensor([[3.0, -3.0], [3.0, -3.0]])
    target = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    assert get_metric("multilabel", "macro_f1").compute(outputs, target) == pytest.approx(0.5)
    assert get_metric("multilabel", "micro_f1").compute(outputs, target) == pytest.approx(1.0)


def test_a_tie_is_not_an_improvement():
    """Early stopping waits for a strictly better value, in either direction."""
    assert not get_metric("classification", "accuracy").better(0.5, 0.5)
    assert not get_metric("regression", "mae").better(0.5, 0.5)


def test_one_labelled_example_has_a_value():
    accuracy, mae = get_metric("classification", "accuracy"), get_metric("regression", "mae")
    one = torch.tensor([True, False])
    assert accuracy.from_stats(accuracy.stats(torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0]), one)) == 1.0
    assert mae.from_stats(mae.stats(torch.tensor([[1.0], [5.0]]), torch.tensor([[3.0], [0.0]]), one)) == 2.0


def test_r2_of_two_values_and_of_targets_with_a_small_spread_match_scikit_learn():
    r2 = get_metric("regression", "r2")
    y, p = torch.tensor([[1.0], [2.0]]), torch.tensor([[1.2], [1.9]])
    assert r2.compute(p, y) == pytest.approx(r2_score(y.numpy(), p.numpy()), rel=1e-5)
    small_y, small_p = REG_Y * 0.01, REG_P * 0.01  # Σ(y - ȳ)² well below 1
    assert r2.compute(small_p, small_y) == pytest.approx(r2_score(small_y.numpy(), small_p.numpy()), rel=1e-4)


def test_a_label_is_predicted_only_when_its_logit_passes_zero_and_present_only_above_one_half():
    micro = get_metric("multilabel", "micro_f1")
    target = torch.tensor([[1.0, 0.0], [0.5, 1.0]])  # a soft 0.5 is not a present label
    outputs = torch.tensor([[1.0, 0.0], [-1.0, 2.0]])  # a logit of exactly 0 (probability 0.5) is not predicted
    assert micro.compute(outputs, target) == pytest.approx(1.0)


def test_a_task_type_without_metrics_has_none_and_names_none():
    from protege.errors import ConfigError

    assert metrics_of("ranking") == []
    with pytest.raises(ConfigError, match=r"ranking has no metric 'ndcg'; known: $"):
        get_metric("ranking", "ndcg")


def test_class_ids_read_soft_targets_at_their_most_probable_class_and_leave_ids_as_they_are():
    from protege.metrics.classification import class_ids

    soft = torch.tensor([[0.1, 0.7, 0.2], [0.6, 0.3, 0.1]])
    assert class_ids(soft).tolist() == [1, 0]
    assert class_ids(torch.tensor([2, 0, 1])).tolist() == [2, 0, 1]
    # ids stored as floats (a CSV column) are still ids, not one soft target to reduce
    assert class_ids(torch.tensor([2.0, 0.0, 1.0])).tolist() == [2.0, 0.0, 1.0]
