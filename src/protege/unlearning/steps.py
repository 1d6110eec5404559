"""Training steps of approximate unlearning. Their batches pair retained examples with forgotten ones
(protege.data.paired, flag ``forget``), so each step sees both and a loss can pull on one set and push on
the other."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F

from protege.data.dataset import UNLABELED
from protege.engine.step import TEACHER_LOGITS, Step, StepResult
from protege.objectives import hard_label_loss

if TYPE_CHECKING:
    from protege.engine.run import TrainingRun

FORGET = "forget"
"""The batch key flagging a forgotten example."""


def only(target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Class ids kept where ``mask`` holds, -1 (skipped by the losses) elsewhere."""
    return torch.where(mask, target, torch.full_like(target, UNLABELED))


def mean_kl(
    student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor, temperature: float, cap: float | None = None
) -> torch.Tensor:
    """T² · KL(softmax(t/T) ‖ softmax(s/T)) averaged over the examples of ``mask`` (0 without any); with
    ``cap``, each example's KL counts at most ``cap`` nats (a term to maximise stays bounded)."""
    log_s = F.log_softmax(student.float() / temperature, dim=1)
    log_t = F.log_softmax(teacher.float() / temperature, dim=1)
    per_example = (log_t.exp() * (log_t - log_s)).sum(1)
    if cap is not None:
        per_example = per_example.clamp(max=cap)
    return temperature * temperature * (per_example * mask).sum() / mask.sum().clamp(min=1)


def _split(batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    forget = batch.get(FORGET)
    if forget is None:
        forget = torch.zeros_like(batch["y"], dtype=torch.bool)
    return forget, batch["labeled"] & ~forget


class NegGradStep(Step):
    """NegGrad+ (Kurmanji et al. 2023, the baseline of "Towards Unbounded Machine Unlearning"): descend on
    the retained examples and ascend on the forgotten ones, β·CE(retain) − (1 − β)·CE(forget). The forget
    term is capped at ``cap`` nats per example, so ascent cannot run away."""

    def __init__(self, beta: float, cap: float):
        self.beta, self.cap = beta, cap

    def __call__(self, model: nn.Module, batch: dict, run: TrainingRun) -> StepResult:
        logits = model(batch["x"])
        forget, retain = _split(batch)
        keep = hard_label_loss(logits, batch["y"], 0.0, retain)
        per_example = F.cross_entropy(logits.float(), batch["y"].clamp(min=0), reduction="none").clamp(max=self.cap)
        ascend = (per_example * forget).sum() / forget.sum().clamp(min=1)
        terms = {"retain_ce": self.beta * keep, "forget_ce": -(1 - self.beta) * ascend}
        return StepResult(terms, logits, only(batch["y"], retain), retain)


class ScrubStep(Step):
    """SCRUB (Kurmanji et al. 2023, eq. 4–6): the student starts as the trained model (the teacher) and stays
    close to it on retained examples, α·KL(t ‖ s) + γ·CE, while moving away from it on forgotten ones,
    −KL(t ‖ s) (weighted by ``forget_weight``, each example's KL capped at ``cap`` nats, which keeps an
    adaptive optimizer from running away with it); the "max" (forget) term is used in the first ``max_epochs``
    epochs only, then only the "min" steps, as the paper alternates and stops."""

    needs_teacher = True

    def __init__(
        self,
        alpha: float,
        gamma: float,
        temperature: float,
        max_epochs: int,
        forget_weight: float = 1.0,
        cap: float | None = None,
    ):
        self.alpha, self.gamma, self.temperature, self.max_epochs = alpha, gamma, temperature, max_epochs
        self.forget_weight, self.cap = forget_weight, cap

    def __call__(self, model: nn.Module, batch: dict, run: TrainingRun) -> StepResult:
        logits, teacher = model(batch["x"]), batch[TEACHER_LOGITS]
        forget, retain = _split(batch)
        terms = {
            "retain_kl": self.alpha * mean_kl(logits, teacher, retain, self.temperature),
            "retain_ce": self.gamma * hard_label_loss(logits, batch["y"], 0.0, retain),
        }
        if run is None or run.state.epoch < self.max_epochs:
            terms["forget_kl"] = -self.forget_weight * mean_kl(logits, teacher, forget, self.temperature, self.cap)
        return StepResult(terms, logits, only(batch["y"], retain), retain)


class BadTeacherStep(Step):
    """Bad-teacher unlearning (Chundawat et al. 2023, eq. 3): the student distils the competent teacher
    (the trained model) on retained examples and an incompetent one (randomly initialised) on forgotten
    ones, KL at temperature T. The teacher is :class:`TwoTeachers`, whose outputs are both side by side."""

    needs_teacher = True

    def __init__(self, temperature: float):
        self.temperature = temperature

    def __call__(self, model: nn.Module, batch: dict, run: TrainingRun) -> StepResult:
        logits = model(batch["x"])
        good, bad = batch[TEACHER_LOGITS].chunk(2, dim=1)
        forget, retain = _split(batch)
        terms = {
            "competent_kl": mean_kl(logits, good, retain, self.temperature),
            "incompetent_kl": mean_kl(logits, bad, forget, self.temperature),
        }
        return StepResult(terms, logits, only(batch["y"], retain), retain)


class TwoTeachers(nn.Module):
    """Two frozen models as one teacher whose logits are theirs side by side (the cache keeps both)."""

    def __init__(self, competent: nn.Module, incompetent: nn.Module):
        super().__init__()
        self.competent, self.incompetent = competent, incompetent

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.competent(x), self.incompetent(x)], dim=1)
