"""DIST: knowledge distillation from a stronger teacher (Huang et al. 2022), relations, not values.

Matching probabilities exactly is hard when the teacher is much stronger; DIST asks the student to
keep the teacher's *ranking* instead, with a Pearson correlation per example (inter-class relation)
and per class across the batch (intra-class relation), eqs. 5-7.
"""

from __future__ import annotations

import torch
from pydantic import NonNegativeFloat, PositiveFloat

from protege.objectives.base import Objective, StepOutputs, hard_label_loss
from protege.objectives.kd import _at_least_fp32


def pearson_distance(a: torch.Tensor, b: torch.Tensor, dim: int) -> torch.Tensor:
    """1 − Pearson correlation of ``a`` and ``b`` along ``dim``, averaged over the other dimension."""
    a = a - a.mean(dim, keepdim=True)
    b = b - b.mean(dim, keepdim=True)
    correlation = (a * b).sum(dim) / (a.norm(dim=dim) * b.norm(dim=dim) + 1e-8)
    return (1.0 - correlation).mean()


def dist_terms(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float):
    """(inter-class, intra-class) relation losses on softmax(z / T), each scaled by T²."""
    t = temperature
    p_s = (_at_least_fp32(student_logits) / t).softmax(-1)
    p_t = (_at_least_fp32(teacher_logits) / t).softmax(-1)
    return pearson_distance(p_s, p_t, dim=1) * t * t, pearson_distance(p_s, p_t, dim=0) * t * t


class DIST(Objective):
    """``beta``·inter-class + ``gamma``·intra-class relation loss + ``ce_weight``·CE."""

    needs_teacher = True

    def __init__(
        self,
        beta: NonNegativeFloat = 1.0,
        gamma: NonNegativeFloat = 1.0,
        temperature: PositiveFloat = 1.0,
        ce_weight: NonNegativeFloat = 1.0,
    ):
        super().__init__()
        self.beta, self.gamma, self.temperature, self.ce_weight = beta, gamma, temperature, ce_weight

    def forward(self, out: StepOutputs) -> dict[str, torch.Tensor]:
        assert out.teacher_logits is not None, "the engine gives a teacher to objectives that need one"
        inter, intra = dist_terms(out.logits, out.teacher_logits, self.temperature)
        terms = {"inter": self.beta * inter, "intra": self.gamma * intra}
        if self.ce_weight > 0:
            terms["ce"] = self.ce_weight * hard_label_loss(out.logits, out.target, labeled=out.labeled)
        return terms
