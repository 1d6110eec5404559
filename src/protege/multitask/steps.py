"""The multi-task step: one forward through the shared backbone and every head, each task's loss on its
slice of the outputs (its type's loss: cross-entropy, binary cross-entropy or squared error), optionally
distilled from its own teacher's slice (TextBrewer's multi-teacher distillation), then the combination
method's terms; a gradient method also owns the backward (Jacobian descent, protege.multitask.combine)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from protege.engine.step import TEACHER_LOGITS, Step, StepResult
from protege.errors import ConfigError
from protege.multitask.combine import Combine
from protege.multitask.heads import heads_of
from protege.multitask.layout import TaskSpec, output_slices
from protege.objectives import hard_label_loss
from protege.objectives.kd import soft_target_loss
from protege.objectives.multilabel import binary_cross_entropy, sigmoid_soft_target_loss
from protege.objectives.regression import regression_loss
from protege.tasks import labeled_mask

if TYPE_CHECKING:
    from protege.engine.run import TrainingRun


@dataclass(frozen=True)
class Distillation:
    """Each head learns from its teacher's outputs: α of the loss from the teacher, 1 − α from the labels;
    classification heads at ``temperature`` (Hinton et al. 2015), regression heads the teacher's values."""

    alpha: float = 0.5
    temperature: float = 4.0


def label_loss(task: TaskSpec, outputs: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The task's loss against its labels: cross-entropy, binary cross-entropy or squared error."""
    target = task.targets(y)
    if task.type == "classification":
        return hard_label_loss(outputs, target, labeled=mask)
    if task.type == "multilabel":
        return binary_cross_entropy(outputs, target, mask)
    return regression_loss(outputs, target, mask)


def teacher_loss(task: TaskSpec, outputs: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """The task's loss against its teacher's outputs: soft targets (KD) or the teacher's values (MSE)."""
    if task.type == "classification":
        return soft_target_loss(outputs, teacher, temperature)
    if task.type == "multilabel":
        return sigmoid_soft_target_loss(outputs, teacher, temperature)
    return regression_loss(outputs, teacher, None)


class MultiTaskStep(Step):
    """Every task's loss from one forward; ``combine`` turns them into loss terms (and maybe the backward)."""

    def __init__(self, tasks: Sequence[TaskSpec], combine: Combine, distillation: Distillation | None = None):
        self.tasks = list(tasks)
        self.slices = output_slices(self.tasks)
        self.combine = combine
        self.distillation = distillation
        self.needs_teacher = distillation is not None  # type: ignore[misc]
        self.features: torch.Tensor | None = None
        self.shared: list[nn.Parameter] = []
        self.heads: dict[str, list[nn.Parameter]] = {}

    @property
    def trainable(self) -> nn.Module:
        return self.combine.trainable

    @property
    def summary(self) -> str:
        """What ``--dry-run`` shows of the step."""
        tasks = ", ".join(f"{t.name} ({t.type}{f' ×{t.weight:g}' if t.weight != 1 else ''})" for t in self.tasks)
        taught = self.distillation
        teachers = f"; each head from its teacher (α={taught.alpha:g}, T={taught.temperature:g})" if taught else ""
        return f"{self.combine.name} over {tasks}{teachers}"

    def open(self, run: TrainingRun, cleanup: contextlib.ExitStack) -> None:
        """A gradient method needs the heads' input (the shared features) and which parameters are whose."""
        if not self.combine.gradient:
            return
        if run.accelerator.num_processes > 1:
            raise ConfigError(
                f"combine {self.combine.name!r} aggregates gradients in one process; train in one "
                "process or use equal or uncertainty"
            )
        heads = heads_of(run.model)
        handle = heads.register_forward_pre_hook(self._keep_features)
        cleanup.callback(handle.remove)

    def setup(self, run: TrainingRun, sample: torch.Tensor | None) -> None:
        self.combine.trainable.to(run.accelerator.device)
        if self.combine.gradient:
            heads = heads_of(run.model)
            owned = {id(p) for p in heads.parameters()}
            self.shared = [p for p in run.model.parameters() if p.requires_grad and id(p) not in owned]
            self.heads = {t.name: [p for p in heads.heads[t.name].parameters() if p.requires_grad] for t in self.tasks}

    def _keep_features(self, module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        self.features = inputs[0]

    def task_losses(self, outputs: torch.Tensor, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Each task's weighted loss: from the labels, and from its teacher's outputs when distilling."""
        y = batch["y"]
        mask = labeled_mask(y, batch.get("labeled"))
        teacher = batch.get(TEACHER_LOGITS)
        losses = {}
        for task in self.tasks:
            own = outputs[:, self.slices[task.name]]
            loss = label_loss(task, own, y, mask)
            if self.distillation is not None and teacher is not None:
                alpha, temperature = self.distillation.alpha, self.distillation.temperature
                taught = teacher_loss(task, own, teacher[:, self.slices[task.name]], temperature)
                loss = (1 - alpha) * loss + alpha * taught
            losses[task.name] = task.weight * loss
        return losses

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor], run: TrainingRun) -> StepResult:
        outputs = model(batch["x"])
        terms = self.combine.terms(self.task_losses(outputs, batch))
        return StepResult(terms, outputs, batch["y"], batch.get("labeled"))

    def backward(self, run: TrainingRun, loss: torch.Tensor, terms: dict[str, torch.Tensor]) -> None:
        if not self.combine.gradient:
            run.accelerator.backward(loss)
            return
        assert self.features is not None
        scale = 1.0 / run.config.grad_accumulation
        self.combine.backward(terms, self.features, self.shared, self.heads, scale)
