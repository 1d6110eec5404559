import pytest
import torch

from protege.continual.strategies.penalty import QuadraticPenalty
from protege.errors import ModelError
from protege.models import build_model
from protege.models.growth import grow_classes


def _built(names):
    torch.manual_seed(0)
    return build_model("mlp", {"hidden": 8}, (3,), names)


def test_a_grown_head_keeps_its_old_rows_and_records_its_classes():
    built = _built(["a", "b"])
    old_weight, old_bias = built.module.head.weight.detach().clone(), built.module.head.bias.detach().clone()
    x = torch.randn(5, 3)
    before = built.module(x).detach()
    grow_classes(built.module, built.card, ["a", "b", "c"], "test")
    assert built.module.head.out_features == 3 and built.card.class_names == ["a", "b", "c"]
    assert torch.equal(built.module.head.weight[:2], old_weight) and torch.equal(built.module.head.bias[:2], old_bias)
    torch.testing.assert_close(built.module(x)[:, :2], before)


def test_growing_needs_the_old_classes_first():
    built = _built(["a", "b"])
    with pytest.raises(ModelError, match="does not start with them"):
        grow_classes(built.module, built.card, ["b", "a", "c"], "test")


class _Run:
    def __init__(self, model):
        self.model = model


def test_the_penalty_is_half_lambda_times_importance_times_squared_distance_on_old_rows():
    built = _built(["a", "b", "c"])
    model = built.module
    anchor = {"head.weight": torch.zeros(2, 8), "head.bias": torch.zeros(2)}  # the head had two outputs then
    importance = {"head.weight": torch.full((2, 8), 2.0), "head.bias": torch.ones(2)}
    hook = QuadraticPenalty("ewc", 3.0, importance, anchor)
    hook.setup(_Run(model))
    value = hook.loss_terms(None, {}, None)["ewc"]
    w, b = model.head.weight[:2], model.head.bias[:2]
    expected = 0.5 * 3.0 * (2.0 * w.pow(2).sum() + b.pow(2).sum())
    assert value.item() == pytest.approx(expected.item(), rel=1e-6)
    value.backward()
    assert model.head.weight.grad[2].abs().sum() == 0  # the new class's row is free


def test_penalty_state_round_trips():
    hook = QuadraticPenalty("mas", 1.0, {"w": torch.ones(2)}, {"w": torch.zeros(2)})
    other = QuadraticPenalty("mas", 1.0, {}, {})
    other.load_state_dict(hook.state_dict())
    assert torch.equal(other.importance["w"], torch.ones(2))
