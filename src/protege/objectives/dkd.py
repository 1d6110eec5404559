"""Decoupled knowledge distillation (Zhao et al. 2022, "Decoupled Knowledge Distillation", eq. 7)."""

from __future__ import annotations

import torch
from pydantic import NonNegativeFloat, PositiveFloat
from torch.nn import functional as F

from protege.metrics.classification import class_ids
from protege.objectives.base import Objective, StepOutputs, hard_label_loss
from protege.objectives.kd import _at_least_fp32


def dkd_terms(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, target: torch.Tensor, temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(TCKD, NCKD), each scaled by T² and averaged over the batch.

    TCKD = KL(b^T ‖ b^S) on the binary split [p_target, 1 − p_target]; NCKD = KL(p̂^T ‖ p̂^S) on the
    distribution over the non-target classes, renormalised.
    """
    t = temperature
    s = _at_least_fp32(student_logits) / t
    z = _at_least_fp32(teacher_logits) / t
    target_mask = F.one_hot(target, s.shape[-1]).bool()
    p_s, p_t = s.softmax(-1), z.softmax(-1)
    b_s = torch.stack([p_s[target_mask], (p_s * ~target_mask).sum(-1)], dim=-1).clamp_min(1e-12)
    b_t = torch.stack([p_t[target_mask], (p_t * ~target_mask).sum(-1)], dim=-1).clamp_min(1e-12)
    tckd = (b_t * (b_t.log() - b_s.log())).sum(-1).mean() * t * t
    # masking the target with a large negative logit renormalises over the other classes
    masked_s = F.log_softmax(s.masked_fill(target_mask, -1e9), dim=-1)
    masked_t = F.log_softmax(z.masked_fill(target_mask, -1e9), dim=-1)
    nckd = F.kl_div(masked_s, masked_t, log_target=True, reduction="batchmean") * t * t
    return tckd, nckd


class DecoupledKD(Objective):
    """``alpha``·TCKD + ``beta``·NCKD + ``ce_weight``·CE. Transfer-set examples (no label) take the
    teacher's top class as their target class."""

    needs_teacher = True

    def __init__(
        self,
        alpha: NonNegativeFloat = 1.0,
        beta: NonNegativeFloat = 8.0,
        temperature: PositiveFloat = 4.0,
        ce_weight: NonNegativeFloat = 1.0,
    ):
        super().__init__()
        self.alpha, self.beta, self.temperature, self.ce_weight = alpha, beta, temperature, ce_weight

    def forward(self, out: StepOutputs) -> dict[str, torch.Tensor]:
        assert out.teacher_logits is not None, "the engine gives a teacher to objectives that need one"
        target = class_ids(out.target)  # a mixed batch's soft targets: their most probable class
        target = torch.where(target >= 0, target, out.teacher_logits.argmax(-1))
        tckd, nckd = dkd_terms(out.logits, out.teacher_logits, target, self.temperature)
        terms = {"tckd": self.alpha * tckd, "nckd": self.beta * nckd}
        if self.ce_weight > 0:
            terms["ce"] = self.ce_weight * hard_label_loss(out.logits, out.target, labeled=out.labeled)
        return terms
