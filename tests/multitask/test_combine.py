"""The combination methods against their definitions: uncertainty weighting is Kendall et al.'s formula on
given losses, the torchjd path gives a one-task model plain gradient descent's update, and on a tiny
two-task model it gives the shared parameters torchjd's aggregation of the Jacobian and each head its
own task's gradient."""

import re

import pytest
import torch
from torch import nn
from torchjd.aggregation import PCGrad, UPGrad

from protege.errors import ConfigError
from protege.multitask.combine import Combine, check_combine
from protege.multitask.heads import attach_heads


def test_uncertainty_weighting_is_kendalls_formula():
    combine = Combine("uncertainty", {}, ["a", "b"])
    with torch.no_grad():
        combine.weights.log_variance.copy_(torch.tensor([0.3, -1.2]))
    losses = {"a": torch.tensor(2.0), "b": torch.tensor(0.5)}
    terms = combine.terms(losses)
    # L = Σ ½ exp(−s) L + ½ s
    assert terms["a"].item() == pytest.approx(0.5 * torch.exp(torch.tensor(-0.3)).item() * 2.0 + 0.15)
    assert terms["b"].item() == pytest.approx(0.5 * torch.exp(torch.tensor(1.2)).item() * 0.5 - 0.6)
    assert next(iter(combine.trainable.parameters())).shape == (2,)


def test_uncertainty_learns_to_trust_the_less_noisy_task():
    combine = Combine("uncertainty", {}, ["clean", "noisy"])
    optimizer = torch.optim.SGD(combine.trainable.parameters(), lr=0.1)
    for _ in range(200):  # fixed losses: the optimum is s = log L
        terms = combine.terms({"clean": torch.tensor(0.1), "noisy": torch.tensor(5.0)})
        optimizer.zero_grad()
        sum(terms.values()).backward()
        optimizer.step()
    s = combine.weights.log_variance.detach()
    assert s[0].item() == pytest.approx(torch.log(torch.tensor(0.1)).item(), abs=0.05)
    assert s[1].item() == pytest.approx(torch.log(torch.tensor(5.0)).item(), abs=0.05)


def _model(seed: int = 0) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 5))
    heads = attach_heads(model, {"a": 3, "b": 2})
    return model, heads


def _losses(outputs: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"a": nn.functional.cross_entropy(outputs[:, :3], y), "b": (outputs[:, 3:] - 1.0).pow(2).mean()}


def _run(model: nn.Module, heads, combine: Combine, x, y, tasks=("a", "b")) -> None:
    features = {}
    handle = heads.register_forward_pre_hook(lambda _, inputs: features.update(f=inputs[0]))
    outputs = model(x)
    handle.remove()
    terms = {k: v for k, v in _losses(outputs, y).items() if k in tasks}
    owned = {id(p) for p in heads.parameters()}
    shared = [p for p in model.parameters() if id(p) not in owned]
    combine.backward(terms, features["f"], shared, {t: list(heads.heads[t].parameters()) for t in tasks}, 1.0)


@pytest.mark.parametrize("method", ["pcgrad", "upgrad", "mgda"])
def test_one_task_gets_plain_gradient_descents_update(method):
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    model, heads = _model()
    _run(model, heads, Combine(method, {}, ["a"]), x, y, tasks=("a",))
    jacobian_descent = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    plain, _ = _model()
    _losses(plain(x), y)["a"].backward()
    for name, grad in jacobian_descent.items():
        torch.testing.assert_close(grad, dict(plain.named_parameters())[name].grad, rtol=1e-5, atol=1e-6)
    assert heads.heads["b"].weight.grad is None  # the other head has no task here


@pytest.mark.parametrize(("method", "aggregator"), [("pcgrad", PCGrad), ("upgrad", UPGrad)])
def test_two_tasks_get_torchjds_aggregation_on_the_shared_parameters(method, aggregator):
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    model, heads = _model()
    torch.manual_seed(5)  # PCGrad draws the order of its projections
    _run(model, heads, Combine(method, {}, ["a", "b"]), x, y)
    # by hand: each task's gradient on the shared parameters, as rows of a Jacobian
    reference, ref_heads = _model()
    shared = [p for n, p in reference.named_parameters() if not n.startswith("2.")]
    rows, own = [], {}
    for task in ("a", "b"):
        loss = _losses(reference(x), y)[task]
        grads = torch.autograd.grad(loss, shared + list(ref_heads.heads[task].parameters()))
        rows.append(torch.cat([g.reshape(-1) for g in grads[: len(shared)]]))
        own[task] = grads[len(shared) :]
    torch.manual_seed(5)
    update = aggregator()(torch.stack(rows))
    got = torch.cat([p.grad.reshape(-1) for n, p in model.named_parameters() if not n.startswith("2.")])
    torch.testing.assert_close(got, update, rtol=1e-4, atol=1e-6)
    for task in ("a", "b"):
        for param, expected in zip(heads.heads[task].parameters(), own[task], strict=True):
            torch.testing.assert_close(param.grad, expected, rtol=1e-5, atol=1e-6)


def test_unknown_methods_and_options_are_one_line_errors():
    with pytest.raises(ConfigError, match=re.escape("unknown combine method 'pcgard' (did you mean \"pcgrad\"?)")):
        check_combine("pcgard", {})
    with pytest.raises(ConfigError, match="takes no options"):
        check_combine("equal", {"beta": 1})
    with pytest.raises(
        ConfigError, match=re.escape("combine 'mgda' has no option 'epsilonn' (did you mean \"epsilon\"?)")
    ):
        check_combine("mgda", {"epsilonn": 0.1})
