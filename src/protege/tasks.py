"""Task types: what a model's outputs mean, how they are scored and what they are trained with.

=================  ==========================  ===================  =====================  ============
task               targets                      outputs              default objective      monitor
=================  ==========================  ===================  =====================  ============
``classification``  one class id per example    logits (softmax)     ``ce``                 val_accuracy
``multilabel``      0/1 per label               logits (sigmoid)     ``bce``                val_micro_f1
``regression``      real values per target      the values           ``mse``                val_loss
=================  ==========================  ===================  =====================  ============

Every batch carries an explicit ``labeled`` mask (transfer-set examples are unlabelled), and each
task's validation loss and metrics (protege.metrics) read only the labelled examples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from protege.errors import ConfigError, did_you_mean
from protege.metrics import Metric, get_metric
from protege.metrics.classification import class_ids


@dataclass(frozen=True)
class Task:
    """One task type: its loss for validation, its metrics and how its outputs become predictions."""

    name: str
    default_objective: str
    train_metric: str
    val_metrics: tuple[str, ...]
    monitor: str
    loss_sum: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    """Σ over the (labelled) examples of the task's loss: (outputs, targets) -> scalar."""
    predict: Callable[[torch.Tensor], torch.Tensor]
    """Outputs to what the user reads: class probabilities, label probabilities, or the values."""

    def metric(self, name: str) -> Metric:
        return get_metric(self.name, name)

    def monitored(self, monitor: str) -> tuple[str, bool]:
        """The record key a ``monitor`` setting names and whether higher is better (``val_loss``: lower)."""
        return monitored(monitor, self.val_metrics, self.metric, f"a {self.name} task")


def monitored(monitor: str, val_metrics: Sequence[str], metric: Callable[[str], Metric], what: str) -> tuple[str, bool]:
    """``monitor`` (``val_loss`` or ``val_<metric>`` of ``val_metrics``) and whether higher is better; anything
    else is one line naming what the validation split of ``what`` measures."""
    if monitor == "val_loss":
        return monitor, False
    name = monitor.removeprefix("val_")
    if not monitor.startswith("val_") or name not in val_metrics:
        valid = ["val_loss", *(f"val_{m}" for m in val_metrics)]
        raise ConfigError(
            f"monitor {monitor!r} is not measured on the validation split of {what}"
            f"{did_you_mean(monitor, valid)}; valid: {', '.join(valid)}"
        )
    return monitor, metric(name).higher_is_better


def _cross_entropy_sum(outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(outputs.float(), class_ids(target), reduction="sum")


def _bce_sum(outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy averaged over the labels, summed over the examples."""
    per_label = F.binary_cross_entropy_with_logits(outputs.float(), target.float(), reduction="none")
    return per_label.mean(-1).sum()


def _mse_sum(outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared error averaged over the targets, summed over the examples."""
    return (outputs.float() - target.float().reshape(outputs.shape)).pow(2).mean(-1).sum()


TASKS: dict[str, Task] = {
    "classification": Task(
        "classification", "ce", "accuracy", ("accuracy",), "val_accuracy", _cross_entropy_sum, lambda o: o.softmax(-1)
    ),
    "multilabel": Task(
        "multilabel", "bce", "micro_f1", ("micro_f1", "macro_f1"), "val_micro_f1", _bce_sum, lambda o: o.sigmoid()
    ),
    "regression": Task("regression", "mse", "mae", ("mae", "rmse", "r2"), "val_loss", _mse_sum, lambda o: o),
}
TASK_NAMES = tuple(TASKS)


def get_task(name: str) -> Task:
    """A task type by name; an unknown one is a one-line error."""
    if name not in TASKS:
        raise ConfigError(f"unknown task {name!r}{did_you_mean(name, TASKS)}; known: {', '.join(TASKS)}")
    return TASKS[name]


def labeled_mask(target: torch.Tensor, labeled: torch.Tensor | None) -> torch.Tensor:
    """The batch's labelled mask; without one, class ids of -1 (a user's own transfer examples) are
    unlabelled and everything else is labelled."""
    if labeled is not None:
        return labeled.bool()
    if not target.is_floating_point() and target.dim() == 1:
        return target >= 0
    return torch.ones(len(target), dtype=torch.bool, device=target.device)
