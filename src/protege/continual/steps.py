"""The training steps continual strategies use: the recipe's objective on the outputs the experience may
use (in a task-incremental stream, each example's own task's classes), plus what a strategy adds:
LwF's distillation from the previous model, iCaRL's sigmoid distillation, DER++'s stored logits."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F

from protege.engine.step import TEACHER_LOGITS, StepResult, SupervisedStep
from protege.objectives import Objective, hard_label_loss, soft_target_loss

if TYPE_CHECKING:
    from protege.engine.run import TrainingRun

MASKED = -1e9
"""The logit an output outside an example's task gets (its softmax probability is 0, its loss finite)."""


class ContinualStep(SupervisedStep):
    """One forward; with ``task_classes`` (experiences × outputs), each example only sees its task's outputs."""

    def __init__(self, objective: Objective, task_classes: torch.Tensor | None = None):
        super().__init__(objective)
        self.task_classes = task_classes

    def forward(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The raw logits and the ones the loss and metrics read (masked to the task's head)."""
        raw = model(batch["x"])
        if self.task_classes is None:
            return raw, raw
        if self.task_classes.device != raw.device:  # moved once, not every step
            self.task_classes = self.task_classes.to(raw.device)
        mask = self.task_classes[batch["task"]]
        return raw, raw.float().masked_fill(~mask, MASKED)

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor], run: TrainingRun) -> StepResult:
        _, logits = self.forward(model, batch)
        outputs = self.step_outputs(logits, batch)
        return StepResult(self.objective(outputs), logits, batch["y"], outputs.labeled)


class LwFStep(ContinualStep):
    """Learning without Forgetting (Li & Hoiem 2017, eq. 2 with Hinton's soft targets): the objective on the
    new data, plus ``alpha`` · T² · KL(softmax(t/T) ‖ softmax(s/T)) on the ``old`` outputs, t being the
    previous experience's model on the same inputs."""

    needs_teacher = True

    def __init__(self, objective: Objective, old: int, alpha: float, temperature: float, task_classes=None):
        super().__init__(objective, task_classes)
        self.needs_teacher = True
        self.old, self.alpha, self.temperature = old, alpha, temperature

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor], run: TrainingRun) -> StepResult:
        raw, logits = self.forward(model, batch)
        outputs = self.step_outputs(logits, batch)
        terms = dict(self.objective(outputs))
        teacher = batch[TEACHER_LOGITS][:, : self.old]
        terms["lwf"] = soft_target_loss(raw[:, : self.old], teacher, self.temperature, self.alpha)
        return StepResult(terms, logits, batch["y"], outputs.labeled)


class ICaRLStep(ContinualStep):
    """iCaRL's representation learning (Rebuffi et al. 2017, Alg. 3): a sigmoid per output, whose target is
    the one-hot label for the new classes and the previous model's sigmoid for the ``old`` ones
    (distillation); binary cross-entropy averaged over outputs and examples."""

    def __init__(self, objective: Objective, old: int, task_classes=None):
        super().__init__(objective, task_classes)
        self.needs_teacher = old > 0
        self.old = old

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor], run: TrainingRun) -> StepResult:
        raw, logits = self.forward(model, batch)
        target = F.one_hot(batch["y"].clamp(min=0), raw.shape[1]).float()
        if self.old:
            target[:, : self.old] = torch.sigmoid(batch[TEACHER_LOGITS][:, : self.old].float())
        loss = F.binary_cross_entropy_with_logits(raw.float(), target)
        return StepResult({"icarl": loss}, logits, batch["y"], batch.get("labeled"))


class DERStep(ContinualStep):
    """Dark Experience Replay++ (Buzzega et al. 2020, eq. 6): the objective on the new examples, plus, on the
    replayed ones, ``alpha`` · the squared error between the logits and those stored with the example
    (over the outputs it had then) and ``beta`` · the cross-entropy with its label (β = 0: plain DER)."""

    def __init__(self, objective: Objective, alpha: float, beta: float, task_classes=None):
        super().__init__(objective, task_classes)
        self.alpha, self.beta = alpha, beta

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor], run: TrainingRun) -> StepResult:
        raw, logits = self.forward(model, batch)
        replayed = batch.get("replayed")
        if replayed is None:
            replayed = torch.zeros_like(batch["y"], dtype=torch.bool)
        labeled = batch["labeled"] & ~replayed
        terms = dict(self.objective(self.step_outputs(logits, batch, labeled)))
        stored = batch["stored"][:, : raw.shape[1]] if "stored" in batch else None
        if stored is not None:
            valid = ~torch.isnan(stored) & replayed.unsqueeze(1)
            error = (raw.float() - stored.nan_to_num()).pow(2) * valid
            rows = replayed.sum().clamp(min=1)
            terms["der"] = self.alpha * error.sum(1).div(valid.sum(1).clamp(min=1)).sum() / rows
            if self.beta:
                terms["der_ce"] = self.beta * hard_label_loss(logits, batch["y"], 0.0, replayed)
        return StepResult(terms, logits, batch["y"], batch["labeled"])
