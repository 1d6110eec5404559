"""Soft targets (one probability per class, as mixup or cutmix give) train through the hard-label loss
and the training metric, beside class ids."""

import pytest
import torch
from torch.nn import functional as F

from protege.config import TrainConfig
from protege.data.dataset import ArrayDataset
from protege.engine import fit
from protege.models.builtin import mlp
from protege.objectives import StepOutputs, build_objective, hard_label_loss


def test_soft_targets_give_the_cross_entropy_with_probabilities():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    soft = torch.tensor([[0.7, 0.3, 0.0], [0.0, 0.5, 0.5]])
    expected = -(soft * F.log_softmax(logits, -1)).sum(-1).mean()
    assert hard_label_loss(logits, soft).item() == pytest.approx(expected.item(), rel=1e-6)
    one_hot = F.one_hot(torch.tensor([0, 2]), 3).float()
    assert hard_label_loss(logits, one_hot).item() == pytest.approx(
        hard_label_loss(logits, torch.tensor([0, 2])).item()
    )


def test_soft_targets_skip_unlabelled_examples():
    logits = torch.tensor([[2.0, 0.0], [0.0, 9.0]])
    soft = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    masked = hard_label_loss(logits, soft, labeled=torch.tensor([True, False]))
    assert masked.item() == pytest.approx(F.cross_entropy(logits[:1], torch.tensor([0])).item(), rel=1e-6)
    terms = build_objective([("ce", {}, 1.0)])(StepOutputs(logits, soft, labeled=torch.tensor([True, False])))
    assert terms["ce"].item() > 0


def test_a_model_trains_on_mixed_inputs_with_soft_targets():
    torch.manual_seed(0)
    y = torch.arange(96) % 3
    x = torch.randn(96, 6) + 3 * F.one_hot(y, 6)[:, :6].float()
    order = torch.randperm(96)
    share = torch.rand(96, 1)
    mixed = share * x + (1 - share) * x[order]
    soft = share * F.one_hot(y, 3).float() + (1 - share) * F.one_hot(y[order], 3).float()
    result = fit(mlp((6,), 3, hidden=16), ArrayDataset(mixed, soft), build_objective([("ce", {}, 1.0)]),
                 TrainConfig(epochs=8, batch_size=16, lr=0.02), val=ArrayDataset(x, y))  # fmt: skip
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.final["val_accuracy"] > 0.8 and "train_accuracy" in result.final
