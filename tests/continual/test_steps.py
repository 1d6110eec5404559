import pytest
import torch
from tests.conftest import FixedLogits
from torch.nn import functional as F

from protege.continual.steps import ContinualStep, DERStep, ICaRLStep, LwFStep
from protege.engine.step import TEACHER_LOGITS
from protege.objectives import build_objective


def _batch(**extra):
    return {"x": torch.tensor([0, 1, 2]), "y": torch.tensor([2, 0, 3]), "labeled": torch.ones(3, dtype=torch.bool),
            **extra}  # fmt: skip


LOGITS = torch.tensor([[1.0, 2.0, 0.5, -1.0], [0.0, 1.0, 2.0, 3.0], [2.0, -1.0, 0.0, 1.0]])
TEACHER = torch.tensor([[0.5, 1.5], [2.0, -2.0], [1.0, 1.0]])


def test_lwf_adds_hintons_soft_targets_on_the_old_outputs():
    step = LwFStep(build_objective([("ce", {}, 1.0)]), old=2, alpha=0.7, temperature=2.0)
    result = step(FixedLogits(LOGITS.clone()), _batch(**{TEACHER_LOGITS: TEACHER}), None)
    t = 2.0
    expected_kd = (
        0.7 * t * t * F.kl_div(F.log_softmax(LOGITS[:, :2] / t, 1), F.softmax(TEACHER / t, 1), reduction="batchmean")
    )
    assert result.terms["lwf"].item() == pytest.approx(expected_kd.item(), rel=1e-5)
    assert result.terms["ce"].item() == pytest.approx(F.cross_entropy(LOGITS, _batch()["y"]).item(), rel=1e-5)


def test_icarl_targets_are_one_hot_for_new_classes_and_the_old_models_sigmoid_for_old_ones():
    step = ICaRLStep(build_objective([("ce", {}, 1.0)]), old=2)
    result = step(FixedLogits(LOGITS.clone()), _batch(**{TEACHER_LOGITS: TEACHER}), None)
    target = F.one_hot(torch.tensor([2, 0, 3]), 4).float()
    target[:, :2] = torch.sigmoid(TEACHER)
    expected = F.binary_cross_entropy_with_logits(LOGITS, target)
    assert result.terms["icarl"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_der_matches_stored_logits_on_replayed_examples_only():
    stored = torch.full((3, 4), float("nan"))
    stored[1, :2] = torch.tensor([0.5, 0.0])  # stored when the model had two outputs
    stored[2] = torch.tensor([1.0, 1.0, 1.0, 1.0])
    replayed = torch.tensor([False, True, True])
    step = DERStep(build_objective([("ce", {}, 1.0)]), alpha=0.3, beta=0.5)
    result = step(FixedLogits(LOGITS.clone()), _batch(stored=stored, replayed=replayed), None)
    mse_1 = ((LOGITS[1, :2] - stored[1, :2]) ** 2).mean()
    mse_2 = ((LOGITS[2] - stored[2]) ** 2).mean()
    assert result.terms["der"].item() == pytest.approx((0.3 * (mse_1 + mse_2) / 2).item(), rel=1e-5)
    y = torch.tensor([2, 0, 3])
    assert result.terms["ce"].item() == pytest.approx(F.cross_entropy(LOGITS[:1], y[:1]).item(), rel=1e-5)
    assert result.terms["der_ce"].item() == pytest.approx(0.5 * F.cross_entropy(LOGITS[1:], y[1:]).item(), rel=1e-5)


def test_task_masks_leave_each_example_its_tasks_outputs():
    mask = torch.tensor([[True, True, False, False], [False, False, True, True]])
    step = ContinualStep(build_objective([("ce", {}, 1.0)]), mask)
    batch = _batch(task=torch.tensor([1, 0, 1]))
    batch["y"] = torch.tensor([2, 0, 3])
    result = step(FixedLogits(LOGITS.clone()), batch, None)
    expected = torch.stack([
        F.cross_entropy(LOGITS[0:1, 2:], torch.tensor([0])),
        F.cross_entropy(LOGITS[1:2, :2], torch.tensor([0])),
        F.cross_entropy(LOGITS[2:3, 2:], torch.tensor([1])),
    ]).mean()  # fmt: skip
    assert result.terms["ce"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert result.outputs[0, 0] < -1e8  # outputs outside the task never win the argmax
