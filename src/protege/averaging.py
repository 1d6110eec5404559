"""Weight averaging as a hook: an exponential moving average of the model's weights, updated after every
optimizer step (Polyak & Juditsky 1992; timm's ``ModelEmaV3``), the teacher of mean-teacher and
self-supervised methods, and often a better final model than the last weights.

    w_ema ← d · w_ema + (1 − d) · w        (buffers, such as BatchNorm statistics, are copied)

The average is part of every checkpoint, so a resumed stage continues it exactly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from protege.hooks import Hook

if TYPE_CHECKING:
    from protege.engine.run import TrainingRun


class WeightAverage(Hook):
    """Keeps ``average`` (a state dict) of the stage's model; ``swap_at_end`` ends the stage with it."""

    name = "weight_average"

    def __init__(self, decay: float = 0.999, swap_at_end: bool = True):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.swap_at_end = swap_at_end
        self.average: dict[str, torch.Tensor] = {}
        self.updates = 0

    def setup(self, run: TrainingRun) -> None:
        self.average = {k: v.detach().clone() for k, v in run.model.state_dict().items()}

    @torch.no_grad()
    def after_optimizer_step(self, run: TrainingRun) -> None:
        current = run.plain_model.state_dict()
        if self.average and next(iter(self.average.values())).device != next(iter(current.values())).device:
            self.average = {k: v.to(current[k].device) for k, v in self.average.items()}
        for key, value in current.items():
            kept = self.average[key]
            if kept.is_floating_point():
                kept.lerp_(value.detach(), 1.0 - self.decay)
            else:
                kept.copy_(value)
        self.updates += 1

    def finish(self, run: TrainingRun, model: nn.Module) -> nn.Module:
        if self.swap_at_end and self.updates:
            model.load_state_dict(self.average)  # copies into the model's own tensors, on their device
        return model

    def state_dict(self) -> dict:
        return {"average": {k: v.detach().cpu() for k, v in self.average.items()}, "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.average = {k: v.clone() for k, v in state["average"].items()}
        self.updates = int(state["updates"])
