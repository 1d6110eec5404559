"""Multi-label objectives: one logit per label, each label a yes/no question of its own.

``bce`` fits the labelled 0/1 targets. ``sigmoid_kd`` distils each label's probability: Hinton et al.'s
soft targets with one Bernoulli per label in place of one softmax over the classes, softened by a
temperature T and scaled by T² so the gradients keep their size as T changes:

    L = α · T² · mean_labels KL(Bern(σ(t/T)) ‖ Bern(σ(s/T))) + (1 − α) · BCE(s, y)
"""

from __future__ import annotations

import torch
from pydantic import PositiveFloat
from torch.nn import functional as F

from protege.objectives.base import Objective, StepOutputs, labelled_mean
from protege.options import Share


def binary_cross_entropy(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """BCE with logits averaged over the labels and the labelled examples (0 when none is labelled)."""
    per_label = F.binary_cross_entropy_with_logits(logits.float(), target.float(), reduction="none")
    return labelled_mean(per_label.mean(-1), mask)


def sigmoid_soft_target_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """T² · KL(Bern(σ(t/T)) ‖ Bern(σ(s/T))), averaged over the labels and the examples."""
    s, t = student.float() / temperature, teacher.float() / temperature
    p = torch.sigmoid(t)
    # KL of two Bernoullis from log-sigmoids, stable for large logits: log σ(x) and log σ(−x) = log(1 − σ(x))
    kl = p * (F.logsigmoid(t) - F.logsigmoid(s)) + (1 - p) * (F.logsigmoid(-t) - F.logsigmoid(-s))
    return kl.mean() * temperature * temperature


class BinaryCrossEntropy(Objective):
    """Binary cross-entropy per label on the labelled examples."""

    tasks = ("multilabel",)

    def forward(self, out: StepOutputs) -> dict[str, torch.Tensor]:
        return {"bce": binary_cross_entropy(out.logits, out.target, out.mask)}


class SigmoidKD(Objective):
    """``alpha`` · per-label soft-target loss at ``temperature`` + (1 − ``alpha``) · BCE on the labelled examples."""

    tasks = ("multilabel",)
    needs_teacher = True

    def __init__(self, temperature: PositiveFloat = 2.0, alpha: Share = 0.9):
        super().__init__()
        self.temperature = temperature
        self.alpha = alpha

    def forward(self, out: StepOutputs) -> dict[str, torch.Tensor]:
        assert out.teacher_logits is not None, "the engine gives a teacher to objectives that need one"
        terms = {"kd": self.alpha * sigmoid_soft_target_loss(out.logits, out.teacher_logits, self.temperature)}
        if self.alpha < 1.0:
            terms["bce"] = (1.0 - self.alpha) * binary_cross_entropy(out.logits, out.target, out.mask)
        return terms
