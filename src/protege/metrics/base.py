"""The Metric record and the per-task registry (protege.metrics documents how they are used)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from protege.errors import ConfigError, did_you_mean

Stats = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
"""(outputs, targets, labelled mask) of a batch -> a vector of sums."""


@dataclass(frozen=True)
class Metric:
    """A named score of a model's outputs against the targets."""

    name: str
    task: str
    higher_is_better: bool
    compute: Callable[[torch.Tensor, torch.Tensor], float]
    """The value over a whole split: (outputs, targets) of every labelled example."""
    stats: Stats | None = None
    from_stats: Callable[[torch.Tensor], float] | None = None
    stat_names: tuple[str, ...] = ()
    """Names of the summed values (checkpoints store mid-epoch training sums by these names)."""

    @property
    def sums(self) -> bool:
        return self.stats is not None

    def better(self, value: float, best: float | None) -> bool:
        return best is None or (value > best if self.higher_is_better else value < best)


_BY_TASK: dict[str, dict[str, Metric]] = {}


def register(metric: Metric) -> Metric:
    """Add a metric to its task type's registry (a name is unique within a task type)."""
    table = _BY_TASK.setdefault(metric.task, {})
    if metric.name in table:
        raise ValueError(f"metric {metric.name!r} of {metric.task} is registered twice")
    table[metric.name] = metric
    return metric


def metrics_of(task: str) -> list[Metric]:
    """The metrics of a task type, in registration order."""
    return list(_BY_TASK.get(task, {}).values())


def get_metric(task: str, name: str) -> Metric:
    """A task type's metric by name; an unknown one is a one-line error listing the known ones."""
    table = _BY_TASK.get(task, {})
    if name not in table:
        known = ", ".join(table)
        raise ConfigError(f"{task} has no metric {name!r}{did_you_mean(name, table)}; known: {known}")
    return table[name]
