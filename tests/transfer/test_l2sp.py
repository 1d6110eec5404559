"""L2-SP (Li et al. 2018): the penalty against a hand computation, its gradient, and its place in training."""

import pytest
import torch
from tests.conftest import make_blobs

from protege.config import TrainConfig
from protege.engine import fit
from protege.models.builtin import mlp
from protege.objectives import build_objective
from protege.transfer import build_strategy


def _model():
    torch.manual_seed(0)
    return mlp((6,), 3, hidden=[4])


def test_penalty_matches_the_paper_equation_by_hand():
    model = _model()
    strategy = build_strategy("l2sp", {"alpha": 0.3, "beta": 0.05})
    strategy.prepare(model)
    assert strategy.loss_terms()["l2sp"].item() == pytest.approx(
        0.05 / 2 * sum(p.pow(2).sum().item() for p in model.head.parameters())
    )
    with torch.no_grad():
        model.features[1].linear.weight[0, 0] += 2.0  # moved 2 away from its pretrained value
        model.features[1].linear.bias[1] -= 0.5
    head = model.head.weight.pow(2).sum().item() + model.head.bias.pow(2).sum().item()
    expected = 0.3 / 2 * (2.0**2 + 0.5**2) + 0.05 / 2 * head
    assert strategy.loss_terms()["l2sp"].item() == pytest.approx(expected, rel=1e-6)


def test_gradient_pulls_towards_the_start_not_towards_zero():
    model = _model()
    strategy = build_strategy("l2sp", {"alpha": 1.0, "beta": 0.0})
    strategy.prepare(model)
    start = model.features[1].linear.weight.detach().clone()
    with torch.no_grad():
        model.features[1].linear.weight.add_(0.1)
    strategy.loss_terms()["l2sp"].backward()
    assert torch.allclose(model.features[1].linear.weight.grad, torch.full_like(start, 0.1), atol=1e-6)
    assert torch.count_nonzero(model.head.weight.grad) == 0


def test_training_logs_the_term_and_replaces_weight_decay():
    strategy = build_strategy("l2sp", {"alpha": 0.1, "beta": 0.01})
    config = TrainConfig(epochs=2, batch_size=16, lr=0.02, weight_decay=0.5)
    result = fit(_model(), make_blobs(48), build_objective([("ce", {}, 1.0)]), config, strategy=strategy)
    assert result.final["train_l2sp"] > 0
    assert all(g["weight_decay"] == 0.0 for g in strategy.param_groups(0.02, 0.5))


class _Linear(torch.nn.Module):
    """A head over ``stem`` backbone parameters: none (a linear model), or one weight without a bias."""

    def __init__(self, stem: bool):
        super().__init__()
        self.flatten = torch.nn.Flatten()
        self.stem = torch.nn.Linear(4, 4, bias=False) if stem else torch.nn.Identity()
        self.head = torch.nn.Linear(4, 2)


@pytest.mark.parametrize("stem", [False, True])
def test_a_backbone_with_no_or_one_parameter_is_penalised_as_the_equation_says(stem):
    torch.manual_seed(0)
    model = _Linear(stem)
    strategy = build_strategy("l2sp", {"alpha": 0.4, "beta": 0.1})
    strategy.prepare(model)
    head = sum(p.pow(2).sum().item() for p in model.head.parameters())
    assert strategy.loss_terms()["l2sp"].item() == pytest.approx(0.1 / 2 * head, rel=1e-6)
    if stem:
        with torch.no_grad():
            model.stem.weight[0, 0] += 3.0
        assert strategy.loss_terms()["l2sp"].item() == pytest.approx(0.4 / 2 * 9.0 + 0.1 / 2 * head, rel=1e-6)
