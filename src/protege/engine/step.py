"""The Step contract (as timm's ``TrainingTask``: the task owns the forward): given the model, the whole
batch dict and the run, a step runs the forwards it needs and returns named loss terms and its outputs.
The loop never calls the model itself, so adversarial, two-stream or multi-view training is a new step,
not a new branch in the loop.

``SupervisedStep`` is protege's default: one forward, the tapped layers, the teacher's outputs the loop
attached to the batch, and an objective. ``RDropStep`` (two forwards per batch) shows a second shape.
"""

from __future__ import annotations

import abc
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from protege.models.taps import FeatureTaps
from protege.objectives import Objective, StepOutputs, hard_label_loss

if TYPE_CHECKING:
    from protege.engine.run import TrainingRun

TEACHER_LOGITS = "teacher_logits"
TEACHER_FEATURES = "teacher_features"
"""Batch keys under which the loop puts the teacher's outputs for the batch (when a step needs a teacher)."""


@dataclass
class StepResult:
    """A step's named loss terms (summed into the loss) and the outputs the metrics read."""

    terms: dict[str, torch.Tensor]
    outputs: torch.Tensor
    target: torch.Tensor
    labeled: torch.Tensor | None = None


class Step(abc.ABC):
    """Runs the model on a batch and returns loss terms; subclasses say what they need from the loop."""

    needs_teacher: ClassVar[bool] = False
    teacher_layers: tuple[str, ...] = ()

    @property
    def trainable(self) -> nn.Module:
        """Parameters that train beside the model's (an objective's adapters); checkpointed, never exported."""
        return nn.Module()

    def open(self, run: TrainingRun, cleanup: contextlib.ExitStack) -> None:  # noqa: B027 (optional moment)
        """Before hooks transform the model: attach what reads the user's module paths (feature taps);
        ``cleanup`` undoes it however the stage ends."""

    def setup(self, run: TrainingRun, sample: torch.Tensor | None) -> None:  # noqa: B027 (optional moment)
        """After hooks' setup, before the optimizer: size trainable parts on a sample batch."""

    @property
    def needs_sample(self) -> bool:
        return False

    @abc.abstractmethod
    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor], run: TrainingRun) -> StepResult:
        """The forwards of one batch, their loss terms and the outputs the metrics read."""

    def backward(self, run: TrainingRun, loss: torch.Tensor, terms: dict[str, torch.Tensor]) -> None:
        """Gradients of the batch's loss (the sum of ``terms``, the step's and the hooks'). A step that
        needs more than one gradient of the summed loss overrides this: Jacobian descent over several
        task losses (protege.multitask) fills the gradients itself from the terms."""
        run.accelerator.backward(loss)


class SupervisedStep(Step):
    """One forward of the model; the objective reads its logits, tapped layers and the teacher's outputs."""

    def __init__(self, objective: Objective):
        self.objective = objective
        self.needs_teacher = objective.needs_teacher  # type: ignore[misc]
        self.teacher_layers = objective.teacher_layers
        self.taps: FeatureTaps | None = None

    @property
    def trainable(self) -> nn.Module:
        return self.objective

    def open(self, run: TrainingRun, cleanup: contextlib.ExitStack) -> None:
        # taps on the module itself (not a distributed wrapper) so the paths are the user's paths
        if self.objective.student_layers:
            self.taps = cleanup.enter_context(FeatureTaps(run.model, self.objective.student_layers))

    @property
    def needs_sample(self) -> bool:
        return self.objective.needs_setup

    def setup(self, run: TrainingRun, sample: torch.Tensor | None) -> None:
        if self.objective.needs_setup:
            self.objective.setup(run.model, run.teacher, sample, len(run.loader.dataset))
        self.objective = self.objective.to(run.accelerator.device)

    def step_outputs(
        self, logits: torch.Tensor, batch: dict[str, torch.Tensor], labeled: torch.Tensor | None = None
    ) -> StepOutputs:
        """What the objective reads of this batch: the logits, targets, teacher outputs, tapped layers and
        the labelled mask (the batch's, or a narrower one a subclass gives)."""
        outputs = StepOutputs(
            logits,
            batch["y"],
            batch.get(TEACHER_LOGITS),
            teacher_features=batch.get(TEACHER_FEATURES, {}),
            index=batch.get("index"),
            labeled=batch.get("labeled") if labeled is None else labeled,
        )
        if self.taps is not None:
            outputs.features = dict(self.taps.outputs)
        return outputs

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor], run: TrainingRun) -> StepResult:
        logits = model(batch["x"])
        outputs = self.step_outputs(logits, batch)
        return StepResult(self.objective(outputs), logits, batch["y"], outputs.labeled)


class RDropStep(Step):
    """R-Drop (Liang et al. 2021, "R-Drop: Regularized Dropout for Neural Networks"): each batch goes through
    the model twice, so dropout draws two sub-models, and their predictions are pulled together:

        L = ½ (CE(p₁, y) + CE(p₂, y)) + α · ½ (KL(p₁ ‖ p₂) + KL(p₂ ‖ p₁))

    (eq. 3 of the paper, with the cross-entropy averaged over the two passes so α keeps its meaning when
    compared with plain training). Unlabelled examples only enter the KL term."""

    def __init__(self, alpha: float = 1.0, label_smoothing: float = 0.0):
        if alpha < 0:
            raise ValueError(f"alpha must be non-negative, got {alpha}")
        self.alpha = alpha
        self.label_smoothing = label_smoothing

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor], run: TrainingRun) -> StepResult:
        first, second = model(batch["x"]), model(batch["x"])
        target, labeled = batch["y"], batch.get("labeled")
        smoothing = self.label_smoothing
        ce = 0.5 * (
            hard_label_loss(first, target, smoothing, labeled) + hard_label_loss(second, target, smoothing, labeled)
        )
        log_p, log_q = F.log_softmax(first.float(), -1), F.log_softmax(second.float(), -1)
        kl = 0.5 * (
            F.kl_div(log_q, log_p, log_target=True, reduction="batchmean")
            + F.kl_div(log_p, log_q, log_target=True, reduction="batchmean")
        )
        return StepResult({"ce": ce, "rdrop": self.alpha * kl}, first, target, labeled)
