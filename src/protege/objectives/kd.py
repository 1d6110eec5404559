"""Knowledge distillation with soft targets (Hinton, Vinyals & Dean 2015)."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from protege.objectives.base import Objective, StepOutputs, hard_label_loss


def soft_target_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """T² · KL(softmax(t/T) ‖ softmax(s/T)), averaged over the batch.

    The T² factor keeps the soft-target gradients on the scale of the hard-label ones as T changes
    (Hinton et al. 2015, section 2).
    """
    t = temperature
    student = F.log_softmax(_at_least_fp32(student_logits) / t, dim=-1)
    teacher = F.log_softmax(_at_least_fp32(teacher_logits) / t, dim=-1)
    return F.kl_div(student, teacher, log_target=True, reduction="batchmean") * (t * t)


def _at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    """Softmax in half precision loses the small differences KD learns from; float64 stays float64."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


class KnowledgeDistillation(Objective):
    """``alpha`` · soft-target loss + (1 − ``alpha``) · cross-entropy on the labelled examples.

    Transfer-set examples (no label) contribute to the soft term only.
    """

    needs_teacher = True

    def __init__(self, temperature: float = 4.0, alpha: float = 0.9, label_smoothing: float = 0.0):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        self.temperature = temperature
        self.alpha = alpha
        self.label_smoothing = label_smoothing

    def forward(self, out: StepOutputs) -> dict[str, torch.Tensor]:
        assert out.teacher_logits is not None, "the engine gives a teacher to objectives that need one"
        terms = {"kd": self.alpha * soft_target_loss(out.logits, out.teacher_logits, self.temperature)}
        if self.alpha < 1.0:
            terms["ce"] = (1.0 - self.alpha) * hard_label_loss(out.logits, out.target, self.label_smoothing)
        return terms
