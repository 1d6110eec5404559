"""Gradient attacks in the model's input space: FGSM (Goodfellow et al. 2015) and PGD (Madry et al. 2018),
in an L∞ or L2 ball, with or without a random start, for k steps.

PGD (Madry et al. 2018, Sec. 2.1) climbs a loss L of the model's outputs from the natural input x:

    x⁰ = x (+ a random point of the ball),   xᵗ⁺¹ = Π_{B(x, ε) ∩ [low, high]} (xᵗ + α · s(∇ₓ L(xᵗ)))

where s is the sign of the gradient (L∞) or the gradient over its L2 norm (L2), and Π projects onto the
ε-ball around x and clips to the valid range. FGSM is one step of size ε from x. Every quantity (x, ε,
α, the range) is in raw input units; InputSpace (space.py) maps to and from the units the model reads.

The model is in eval mode while it is attacked (BatchNorm uses its running statistics and does not
update them, dropout is off), and each module's own mode comes back afterwards; only the input's
gradient is taken, so the parameters' ``.grad`` and the data are never touched.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from protege.data.dataset import UNLABELED
from protege.robust.space import InputSpace

Norm = Literal["linf", "l2"]
Start = Literal["ball", "none", "small"]
"""Where PGD starts: uniformly in the ball (Madry et al.), at x, or at x + 0.001 · N(0, 1) (TRADES, RSLAD)."""
LossFn = Callable[[torch.Tensor], torch.Tensor]
"""The logits of the perturbed batch → the scalar the attack increases (a sum over the batch)."""

SMALL_START = 0.001
"""TRADES' and RSLAD's start, in raw units: their KL loss has no gradient at x' = x itself."""
TINY = 1e-12


@dataclass(frozen=True)
class Attack:
    """PGD's settings; ``step_size`` defaults to 2.5 · ε / steps, so k steps can cross the ball and back
    (Madry et al. 2018, appendix)."""

    epsilon: float
    norm: Norm = "linf"
    steps: int = 10
    step_size: float | None = None
    random_start: bool = True

    @property
    def alpha(self) -> float:
        return self.step_size if self.step_size is not None else 2.5 * self.epsilon / self.steps

    def describe(self) -> dict:
        return {
            "norm": self.norm,
            "epsilon": self.epsilon,
            "steps": self.steps,
            "step_size": self.alpha,
            "random_start": self.random_start,
        }


def cross_entropy_loss(target: torch.Tensor) -> LossFn:
    """The summed cross-entropy with the labels (unlabelled examples, class −1, add nothing)."""
    return lambda logits: F.cross_entropy(logits.float(), target, ignore_index=UNLABELED, reduction="sum")


def kl_loss(reference: torch.Tensor) -> LossFn:
    """The summed KL(softmax(reference) ‖ softmax(logits)): how far the prediction moves from a reference
    (the model's own natural prediction for TRADES, the teacher's for RSLAD)."""
    target = F.log_softmax(reference.detach().float(), -1)
    return lambda logits: F.kl_div(F.log_softmax(logits.float(), -1), target, log_target=True, reduction="sum")


@contextlib.contextmanager
def frozen_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode, each module's own training flag restored afterwards (a strategy may keep
    some BatchNorm layers in eval mode while the rest trains)."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    loss_fn: LossFn,
    attack: Attack,
    space: InputSpace,
    *,
    start: Start | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The adversarial version of ``x`` (model units) after ``attack.steps`` PGD steps that increase
    ``loss_fn``; detached, in model units. ``start`` defaults to the ball with ``attack.random_start``, else
    x. ``generator`` (on the CPU) draws the random start; without one, torch's global generator does (its
    state is in every training checkpoint, so a resumed stage draws the same starts)."""
    with torch.enable_grad(), frozen_mode(model):
        natural = space.clip(space.to_raw(x.detach()))
        adversarial = _start(natural, attack, start or ("ball" if attack.random_start else "none"), space, generator)
        for _ in range(attack.steps):
            adversarial.requires_grad_(True)
            loss = loss_fn(model(space.to_model(adversarial)))
            (gradient,) = torch.autograd.grad(loss, [adversarial])
            adversarial = _ascend(adversarial.detach(), gradient, attack.alpha, attack.norm)
            adversarial = space.clip(project(adversarial, natural, attack.epsilon, attack.norm))
    return space.to_model(adversarial).detach()


def fgsm(
    model: nn.Module, x: torch.Tensor, target: torch.Tensor, space: InputSpace, epsilon: float, norm: Norm = "linf"
) -> torch.Tensor:
    """The fast gradient sign method (Goodfellow et al. 2015, Sec. 4: x + ε · sign(∇ₓ J(θ, x, y)); for L2,
    the fast gradient method x + ε · ∇/‖∇‖₂): one step of PGD of size ε from x, clipped to the range."""
    attack = Attack(epsilon, norm, steps=1, step_size=epsilon, random_start=False)
    return pgd(model, x, cross_entropy_loss(target), attack, space)


def project(adversarial: torch.Tensor, natural: torch.Tensor, epsilon: float, norm: Norm) -> torch.Tensor:
    """The closest point of the ε-ball around ``natural`` (per example)."""
    delta = adversarial - natural
    if norm == "linf":
        return natural + delta.clamp(-epsilon, epsilon)
    norms = delta.flatten(1).norm(dim=1).clamp(min=TINY)
    scale = (epsilon / norms).clamp(max=1.0)
    return natural + delta * scale.view(-1, *[1] * (delta.dim() - 1))


def _ascend(adversarial: torch.Tensor, gradient: torch.Tensor, alpha: float, norm: Norm) -> torch.Tensor:
    """One step of size α along the steepest ascent direction of the norm."""
    if norm == "linf":
        return adversarial + alpha * gradient.sign()
    norms = gradient.flatten(1).norm(dim=1).clamp(min=TINY)
    return adversarial + alpha * gradient / norms.view(-1, *[1] * (gradient.dim() - 1))


def _start(
    natural: torch.Tensor, attack: Attack, start: Start, space: InputSpace, generator: torch.Generator | None
) -> torch.Tensor:
    """The first point: x, x plus small Gaussian noise, or a random point of the ball (L∞: uniform per
    value; L2: a uniform direction at a radius uniform in [0, ε]), clipped to the range."""
    if start == "none":
        return natural.clone()
    if start == "small":
        return space.clip(natural + SMALL_START * _noise(natural, "normal", generator))
    if attack.norm == "linf":
        delta = attack.epsilon * (2 * _noise(natural, "uniform", generator) - 1)
    else:
        direction = _noise(natural, "normal", generator)
        norms = direction.flatten(1).norm(dim=1).clamp(min=TINY)
        radius = attack.epsilon * _noise(norms, "uniform", generator)
        delta = direction * (radius / norms).view(-1, *[1] * (natural.dim() - 1))
    return space.clip(natural + delta)


def _noise(like: torch.Tensor, kind: str, generator: torch.Generator | None) -> torch.Tensor:
    if generator is None:
        return torch.rand_like(like) if kind == "uniform" else torch.randn_like(like)
    draw = torch.rand if kind == "uniform" else torch.randn
    return draw(like.shape, generator=generator, dtype=like.dtype).to(like.device)
