"""The Objective contract: student (and teacher) outputs for a batch in, named loss terms out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

from protege.data.dataset import UNLABELED
from protege.tasks import labeled_mask


@dataclass
class StepOutputs:
    """What one training step produced: the model's outputs (``logits``), the targets, the teacher's
    outputs and tapped layers, and which examples are labelled (transfer-set examples are not)."""

    logits: torch.Tensor
    target: torch.Tensor
    teacher_logits: torch.Tensor | None = None
    features: dict[str, torch.Tensor] = field(default_factory=dict)
    teacher_features: dict[str, torch.Tensor] = field(default_factory=dict)
    index: torch.Tensor | None = None
    """Positions of the batch's examples in the training set (memory banks such as CRD's key on them)."""
    labeled: torch.Tensor | None = None
    """The labelled mask; None: class ids of -1 are unlabelled, everything else is (protege.tasks)."""

    @property
    def mask(self) -> torch.Tensor:
        return labeled_mask(self.target, self.labeled)


class Objective(nn.Module):
    """A loss as a small module; ``forward`` returns named, already-weighted terms the engine sums.

    An objective that needs intermediate outputs names them by module path in ``student_layers`` and
    ``teacher_layers``; the engine taps those modules and hands their outputs over in ``StepOutputs``.
    """

    needs_teacher: ClassVar[bool] = False
    tasks: ClassVar[tuple[str, ...]] = ("classification",)
    """The task types (protege.tasks) whose outputs this objective reads."""
    student_layers: tuple[str, ...] = ()
    teacher_layers: tuple[str, ...] = ()

    def setup(self, student: nn.Module, teacher: nn.Module | None, sample: torch.Tensor, num_examples: int) -> None:
        """Build what depends on the models' shapes (adapters) from a sample batch, or on the size of the
        training set (memory banks); most objectives need nothing."""

    @property
    def needs_setup(self) -> bool:
        return type(self).setup is not Objective.setup


def labelled_mean(per_example: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean of a per-example loss over the labelled examples (0 with no gradient when there are none)."""
    return (per_example * mask).sum() / mask.sum().clamp(min=1)


def hard_label_loss(
    logits: torch.Tensor, target: torch.Tensor, label_smoothing: float = 0.0, labeled: torch.Tensor | None = None
) -> torch.Tensor:
    """Cross-entropy averaged over the labelled examples only (0 with no gradient when there are none).
    Targets are class ids, or soft targets (one probability per class, as mixup gives)."""
    mask = labeled_mask(target, labeled)
    if target.is_floating_point() and target.dim() == logits.dim():
        per_example = nn.functional.cross_entropy(
            logits.float(), target, label_smoothing=label_smoothing, reduction="none"
        )
        return (per_example * mask).sum() / mask.sum().clamp(min=1)
    if labeled is not None:  # a mask narrower than the dataset's (replayed, forgotten examples) counts too
        target = target.masked_fill(~labeled, UNLABELED)
    # protege's datasets store class id -1 for every unlabelled example, so ignore_index skips them
    total = nn.functional.cross_entropy(
        logits.float(), target, ignore_index=UNLABELED, label_smoothing=label_smoothing, reduction="sum"
    )
    return total / mask.sum().clamp(min=1)
