"""Regression objectives: the outputs are the predicted values (one per target).

``mse`` and ``huber`` fit the labelled targets; ``match`` distils by imitating the teacher's outputs on
every example, transfer-set ones included (without classes there are no soft targets to soften: the
teacher's values are the student's targets where no label exists, and beside the label where one does):

    L = α · ℓ(s, t) + (1 − α) · ℓ(s, y)      ℓ: squared error (or Huber), averaged over the targets
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import PositiveFloat
from torch.nn import functional as F

from protege.objectives.base import Objective, StepOutputs, labelled_mean
from protege.options import Share

Loss = Literal["mse", "huber"]


def regression_loss(
    outputs: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None, loss: Loss = "mse", delta: float = 1.0
) -> torch.Tensor:
    """Squared error (or Huber with ``delta``) averaged over the targets and the examples in ``mask``
    (every example when None); 0 with no gradient when the mask is empty."""
    outputs, target = outputs.float(), target.float().reshape(outputs.shape)
    if loss == "huber":
        per_value = F.huber_loss(outputs, target, delta=delta, reduction="none")
    else:
        per_value = (outputs - target).pow(2)
    per_example = per_value.reshape(len(outputs), -1).mean(-1)
    return per_example.mean() if mask is None else labelled_mean(per_example, mask)


class MeanSquaredError(Objective):
    """Squared error on the labelled examples, averaged over the targets."""

    tasks = ("regression",)

    def forward(self, out: StepOutputs) -> dict[str, torch.Tensor]:
        return {"mse": regression_loss(out.logits, out.target, out.mask)}


class Huber(Objective):
    """Huber loss (quadratic within ``delta`` of the target, linear beyond): robust to outlying targets."""

    tasks = ("regression",)

    def __init__(self, delta: PositiveFloat = 1.0):
        super().__init__()
        self.delta = delta

    def forward(self, out: StepOutputs) -> dict[str, torch.Tensor]:
        return {"huber": regression_loss(out.logits, out.target, out.mask, "huber", self.delta)}


class OutputMatching(Objective):
    """``alpha`` · ℓ(student, teacher) on every example + (1 − ``alpha``) · ℓ(student, target) on the
    labelled ones; ℓ is ``mse`` or ``huber``."""

    tasks = ("regression",)
    needs_teacher = True

    def __init__(self, alpha: Share = 0.5, loss: Loss = "mse", delta: PositiveFloat = 1.0):
        super().__init__()
        self.alpha = alpha
        self.loss = loss
        self.delta = delta

    def forward(self, out: StepOutputs) -> dict[str, torch.Tensor]:
        assert out.teacher_logits is not None, "the engine gives a teacher to objectives that need one"
        match = regression_loss(out.logits, out.teacher_logits, None, self.loss, self.delta)
        terms = {"match": self.alpha * match}
        if self.alpha < 1.0:
            terms[self.loss] = (1.0 - self.alpha) * regression_loss(
                out.logits, out.target, out.mask, self.loss, self.delta
            )
        return terms
