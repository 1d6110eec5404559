"""Plain supervised training."""

from __future__ import annotations

import torch

from protege.objectives.base import Objective, StepOutputs, hard_label_loss
from protege.options import DropRate


class CrossEntropy(Objective):
    """Cross-entropy with the hard labels, optionally label-smoothed (Szegedy et al. 2016)."""

    def __init__(self, label_smoothing: DropRate = 0.0):
        super().__init__()
        self.label_smoothing = label_smoothing

    def forward(self, out: StepOutputs) -> dict[str, torch.Tensor]:
        return {"ce": hard_label_loss(out.logits, out.target, self.label_smoothing, out.labeled)}
