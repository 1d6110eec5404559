"""Several teachers as one: the (weighted) average of their soft targets.

Averaging happens on probabilities at the distillation temperature T, not on logits: the ensemble
returns T·log Σ_k w_k·softmax(z_k / T), whose softmax at temperature T is exactly the weighted mean of
the teachers' softened distributions. Any objective that softens teacher logits at T (kd, dkd, dist)
therefore distils from the averaged soft targets, and the output can be cached like one teacher's.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class EnsembleTeacher(nn.Module):
    """Teachers of any architecture (same classes) whose soft targets are averaged with ``weights``."""

    def __init__(self, teachers: Sequence[nn.Module], weights: Sequence[float] | None = None, temperature: float = 1.0):
        super().__init__()
        if len(teachers) < 2:
            raise ValueError("an ensemble needs at least two teachers")
        weights = [1.0] * len(teachers) if weights is None else list(weights)
        if len(weights) != len(teachers) or any(w <= 0 for w in weights):
            raise ValueError(f"give one positive weight per teacher ({len(teachers)}), got {weights}")
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.teachers = nn.ModuleList(teachers)
        total = sum(weights)
        self.register_buffer("weights", torch.tensor([w / total for w in weights]))
        self.temperature = temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.temperature
        log_probs = torch.stack([torch.log_softmax(teacher(x).float() / t, dim=-1) for teacher in self.teachers])
        return t * torch.logsumexp(log_probs + self.weights.log().view(-1, 1, 1), dim=0)
