"""Attacks: inside the ε-ball and the range in raw units (standardised or not), FGSM against its closed
form on a linear model, PGD at least as strong as FGSM, and nothing changed but the returned inputs."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from protege.models.builtin import cnn2d, mlp
from protege.robust.attacks import Attack, cross_entropy_loss, fgsm, frozen_mode, pgd, project
from protege.robust.space import InputSpace


def _images(n: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw 'pixels' in [0, 1] (some at the edges, where clipping matters) and labels."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 4, 4, generator=g)
    x[:, :, 0, 0] = 0.0
    x[:, :, -1, -1] = 1.0
    return x, torch.randint(0, 3, (n,), generator=g)


def _standardised(x: torch.Tensor) -> InputSpace:
    return InputSpace(0.0, 1.0, x.mean(0), x.std(0).clamp(min=0.05))


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("standardise", [False, True])
def test_pgd_stays_in_the_ball_and_the_range_in_raw_units(norm, standardise):
    torch.manual_seed(0)
    raw, y = _images()
    space = _standardised(raw) if standardise else InputSpace(0.0, 1.0)
    model = mlp((1, 4, 4), 3, hidden=16)
    epsilon = 0.3 if norm == "linf" else 1.0
    x = space.to_model(raw)
    adversarial = space.to_raw(pgd(model, x, cross_entropy_loss(y), Attack(epsilon, norm, steps=7), space))
    delta = (adversarial - raw).flatten(1)
    size = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
    assert (size <= epsilon + 1e-5).all()
    assert size.max() > 0.5 * epsilon  # it moved: the budget is used, not ignored
    assert adversarial.min() >= -1e-6 and adversarial.max() <= 1 + 1e-6
    if standardise:  # in the model's units the same perturbation is ε / std per feature: far more than ε
        assert (pgd(model, x, cross_entropy_loss(y), Attack(epsilon, norm), space) - x).abs().max() > epsilon


def _linear(features: int = 16, classes: int = 3) -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Flatten(), nn.Linear(features, classes))


@pytest.mark.parametrize("standardise", [False, True])
def test_fgsm_is_the_closed_form_on_a_linear_model(standardise):
    raw, y = _images()
    space = _standardised(raw) if standardise else InputSpace(0.0, 1.0)
    model = _linear()
    weight, bias = model[1].weight.detach(), model[1].bias.detach()
    x = space.to_model(raw)
    # ∂CE/∂x_model = Wᵀ(softmax(z) − onehot(y)); raw = x·std + mean scales it by 1/std > 0, same sign
    z = x.flatten(1) @ weight.T + bias
    gradient = (z.softmax(-1) - F.one_hot(y, 3)) @ weight
    expected = (raw.flatten(1) + 0.1 * gradient.sign()).clamp(0, 1)
    got = space.to_raw(fgsm(model, x, y, space, 0.1)).flatten(1)
    assert torch.allclose(got, expected, atol=1e-5)


def test_the_l2_fast_gradient_step_is_the_normalised_gradient():
    raw, y = _images()
    space = InputSpace(-10.0, 10.0)  # far away: no clipping
    model = _linear()
    weight, bias = model[1].weight.detach(), model[1].bias.detach()
    gradient = ((raw.flatten(1) @ weight.T + bias).softmax(-1) - F.one_hot(y, 3)) @ weight
    expected = raw.flatten(1) + 0.5 * gradient / gradient.norm(dim=1, keepdim=True)
    assert torch.allclose(fgsm(model, raw, y, space, 0.5, "l2").flatten(1), expected, atol=1e-5)


def test_pgd_finds_a_loss_at_least_as_high_as_fgsm():
    torch.manual_seed(0)
    raw, y = _images(64)
    space = InputSpace(0.0, 1.0)
    model = mlp((1, 4, 4), 3, hidden=32, layers=2).eval()
    loss = cross_entropy_loss(y)
    with torch.no_grad():
        natural = loss(model(raw))
        one_step = loss(model(fgsm(model, raw, y, space, 0.2)))
        many = loss(model(pgd(model, raw, loss, Attack(0.2, steps=20, step_size=0.02, random_start=False), space)))
    assert natural < one_step <= many


def test_an_attack_changes_neither_the_data_nor_batchnorm_nor_gradients():
    torch.manual_seed(0)
    raw, y = _images(16)
    space = _standardised(raw)
    model = cnn2d((1, 4, 4), 3, width=4)
    model.train()
    model(space.to_model(raw))  # running statistics that are not the initial ones
    model.head.eval()  # a module a strategy keeps in eval mode keeps it
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = space.to_model(raw)
    kept = x.clone()
    pgd(model, x, cross_entropy_loss(y), Attack(0.1, steps=3), space)
    assert torch.equal(x, kept)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # BatchNorm's too
    assert model.training and not model.head.training
    assert all(p.grad is None for p in model.parameters())


def test_frozen_mode_restores_each_modules_flag_when_the_attack_fails():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    model[1].eval()
    with pytest.raises(RuntimeError), frozen_mode(model):
        assert not model.training
        raise RuntimeError
    assert model.training and model[0].training and not model[1].training


def test_random_starts_come_from_the_generator_given():
    raw, y = _images()
    model, space = _linear(), InputSpace(0.0, 1.0)
    attack = Attack(0.2, steps=1, step_size=1e-9)  # the start alone
    first = pgd(model, raw, cross_entropy_loss(y), attack, space, generator=torch.Generator().manual_seed(5))
    again = pgd(model, raw, cross_entropy_loss(y), attack, space, generator=torch.Generator().manual_seed(5))
    other = pgd(model, raw, cross_entropy_loss(y), attack, space, generator=torch.Generator().manual_seed(6))
    assert torch.equal(first, again) and not torch.equal(first, other)
    interior = (raw > 0.2) & (raw < 0.8)  # away from the edges the start is uniform in [x − ε, x + ε]
    delta = (first - raw)[interior]
    assert delta.abs().max() <= 0.2 + 1e-6 and delta.min() < -0.1 and delta.max() > 0.1


def test_projection_onto_the_l2_ball_keeps_points_inside():
    natural = torch.zeros(3, 2)
    points = torch.tensor([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0]])
    assert torch.allclose(project(points, natural, 1.0, "l2"), torch.tensor([[0.6, 0.8], [0.3, 0.4], [0.0, 0.0]]))
