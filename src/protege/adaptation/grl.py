"""The gradient reversal layer of Ganin & Lempitsky (2015) and Ganin et al. (2016, JMLR, eq. 13):
the identity on the forward pass, −λ times the gradient on the backward pass, so the layers below it
learn to make the domain head fail while the head itself learns to succeed. λ grows with training
progress p ∈ [0, 1] as λ(p) = 2 / (1 + exp(−γ p)) − 1 (γ = 10), suppressing the head's noisy signal
early on."""

from __future__ import annotations

import math

import torch


class _Reverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: float) -> torch.Tensor:  # type: ignore[override]
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return -ctx.weight * grad, None


def reverse_gradient(x: torch.Tensor, weight: float) -> torch.Tensor:
    """``x`` unchanged; its gradient multiplied by −``weight`` on the way back."""
    return _Reverse.apply(x, weight)


def reversal_weight(progress: float, gamma: float = 10.0, high: float = 1.0) -> float:
    """λ(p) = high · (2 / (1 + exp(−γ p)) − 1): 0 at the start, ``high`` as p → 1 (Ganin et al. 2016,
    Sec. 5.2.2; MDD's reference implementation caps it at high = 0.1)."""
    p = min(max(progress, 0.0), 1.0)
    return high * (2.0 / (1.0 + math.exp(-gamma * p)) - 1.0)
