"""Regression and multi-label objectives against hand computations of their equations."""

import math

import pytest
import torch

from protege.objectives import StepOutputs, build_objective


def test_mse_averages_over_targets_and_labelled_examples_only():
    s = torch.tensor([[1.0, 2.0], [0.0, 0.0], [5.0, 5.0]])
    y = torch.tensor([[0.0, 0.0], [1.0, 1.0], [9.0, 9.0]])
    labeled = torch.tensor([True, True, False])
    terms = build_objective([("mse", {}, 1.0)])(StepOutputs(s, y, labeled=labeled))
    expected = ((1 + 4) / 2 + (1 + 1) / 2) / 2  # the unlabelled third example is left out
    assert terms["mse"].item() == pytest.approx(expected)


def test_huber_is_quadratic_near_and_linear_far():
    s, y = torch.tensor([[0.5], [3.0]]), torch.zeros(2, 1)
    terms = build_objective([("huber", {"delta": 1.0}, 1.0)])(StepOutputs(s, y))
    assert terms["huber"].item() == pytest.approx((0.5 * 0.25 + (3.0 - 0.5)) / 2)


def test_match_imitates_the_teacher_everywhere_and_the_label_where_there_is_one():
    s = torch.tensor([[1.0], [2.0]])
    t = torch.tensor([[0.0], [0.0]])
    y = torch.tensor([[3.0], [0.0]])
    out = StepOutputs(s, y, t, labeled=torch.tensor([True, False]))
    terms = build_objective([("match", {"alpha": 0.25}, 1.0)])(out)
    assert terms["match"].item() == pytest.approx(0.25 * (1 + 4) / 2)
    assert terms["mse"].item() == pytest.approx(0.75 * (1 - 3) ** 2)


def test_bce_per_label_on_labelled_examples():
    s = torch.tensor([[0.0, 2.0], [1.0, -1.0]])
    y = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    terms = build_objective([("bce", {}, 1.0)])(StepOutputs(s, y, labeled=torch.tensor([True, False])))
    expected = (-math.log(0.5) + -math.log(1 - 1 / (1 + math.exp(-2)))) / 2
    assert terms["bce"].item() == pytest.approx(expected, rel=1e-5)


def test_sigmoid_kd_is_the_binary_kl_at_temperature_scaled_by_t_squared():
    s, t, temperature = torch.tensor([[0.3, -1.2]]), torch.tensor([[2.0, 0.5]]), 2.0
    out = StepOutputs(s, torch.zeros(1, 2), t, labeled=torch.tensor([False]))
    terms = build_objective([("sigmoid_kd", {"temperature": temperature, "alpha": 0.6}, 1.0)])(out)
    p, q = torch.sigmoid(t / temperature), torch.sigmoid(s / temperature)
    kl = (p * (p / q).log() + (1 - p) * ((1 - p) / (1 - q)).log()).mean()
    assert terms["kd"].item() == pytest.approx(0.6 * temperature**2 * kl.item(), rel=1e-5)
    assert terms["bce"].item() == 0.0  # nothing labelled in the batch


def test_sigmoid_kd_is_zero_when_the_student_is_the_teacher_and_stays_finite_for_large_logits():
    t = torch.tensor([[50.0, -80.0, 0.0]])
    terms = build_objective([("sigmoid_kd", {"alpha": 1.0}, 1.0)])(StepOutputs(t.clone(), torch.zeros(1, 3), t))
    assert abs(terms["kd"].item()) < 1e-6
    far = build_objective([("sigmoid_kd", {"alpha": 1.0}, 1.0)])(StepOutputs(-t, torch.zeros(1, 3), t))
    assert math.isfinite(far["kd"].item()) and far["kd"].item() > 0
