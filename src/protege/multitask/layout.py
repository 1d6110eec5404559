"""Where each task sits: its outputs (a slice of the model's concatenated head outputs) and its targets
(a slice of the data's target matrix), plus :class:`MultiTaskType`, the task type of a multi-head model.

The model returns every head's outputs side by side and the data holds every task's targets side by side
(a classification task's class id as one float column), so the loop, validation, checkpoints, the teacher
cache and export see one tensor as for any model; only the multi-task code cuts it into tasks.

The tasks' average, ``mean_score``, averages one score per task that is higher-is-better and near [0, 1]
whatever the type: accuracy (classification), micro-F1 (multi-label), R² (regression)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from protege.errors import ConfigError, did_you_mean
from protege.metrics import Metric
from protege.tasks import TASKS, Task, monitored

SCORE = {"classification": "accuracy", "multilabel": "micro_f1", "regression": "r2"}
"""Each task type's score in the average."""
MEAN_SCORE = "mean_score"


@dataclass(frozen=True)
class TaskSpec:
    """One task of a model: its name, type, output names (classes, labels or targets), its columns in the
    data's target matrix (``target_start``) and its loss weight."""

    name: str
    type: str
    names: tuple[str, ...]
    target_start: int
    weight: float = 1.0

    @property
    def width(self) -> int:
        """Outputs of its head: one per class, label or target."""
        return len(self.names)

    @property
    def target_width(self) -> int:
        return 1 if self.type == "classification" else self.width

    def targets(self, y: torch.Tensor) -> torch.Tensor:
        """Its targets from the data's matrix: class ids, or its columns of values."""
        part = y[:, self.target_start : self.target_start + self.target_width]
        return part[:, 0].long() if self.type == "classification" else part

    def describe(self) -> dict:
        """What a model card records of the task."""
        return {
            "name": self.name,
            "type": self.type,
            "names": list(self.names),
            "target_start": self.target_start,
            "weight": self.weight,
        }

    @classmethod
    def from_card(cls, entry: dict) -> TaskSpec:
        return cls(
            entry["name"],
            entry["type"],
            tuple(entry["names"]),
            int(entry["target_start"]),
            float(entry.get("weight", 1.0)),
        )


def output_slices(tasks: Sequence[TaskSpec]) -> dict[str, slice]:
    """Each task's columns in the model's concatenated outputs, in the order of ``tasks``."""
    slices, start = {}, 0
    for task in tasks:
        slices[task.name] = slice(start, start + task.width)
        start += task.width
    return slices


def split_outputs(tasks: Sequence[TaskSpec], outputs: torch.Tensor) -> dict[str, torch.Tensor]:
    """The concatenated outputs cut into each task's."""
    return {name: outputs[:, cut] for name, cut in output_slices(tasks).items()}


def output_names(tasks: Sequence[TaskSpec]) -> list[str]:
    """One name per output column, ``task:name`` (what a card's class_names holds for a multi-head model)."""
    return [f"{task.name}:{name}" for task in tasks for name in task.names]


def _task_metric(task: TaskSpec, cut: slice, metric: Metric) -> Metric:
    """``metric`` of ``task``'s type read on its slice of outputs and targets."""

    def stats(outputs: torch.Tensor, y: torch.Tensor, labeled: torch.Tensor) -> torch.Tensor:
        return metric.stats(outputs[:, cut], task.targets(y), labeled)

    def compute(outputs: torch.Tensor, y: torch.Tensor) -> float:
        return metric.compute(outputs[:, cut], task.targets(y))

    summed = metric.sums
    return Metric(
        f"{task.name}_{metric.name}",
        "multitask",
        metric.higher_is_better,
        compute,
        stats if summed else None,
        metric.from_stats if summed else None,
    )


def _stat_size(task: TaskSpec, metric: Metric) -> int:
    outputs, y = torch.zeros(1, task.width), torch.zeros(1, task.target_start + task.target_width)
    return len(metric.stats(outputs, task.targets(y), torch.ones(1, dtype=torch.bool)))


def _mean_metric(scores: list[Metric], sizes: list[int]) -> Metric:
    """The average of the tasks' scores, summable: each task's sums side by side."""

    def stats(outputs: torch.Tensor, y: torch.Tensor, labeled: torch.Tensor) -> torch.Tensor:
        return torch.cat([score.stats(outputs, y, labeled).float() for score in scores])

    def from_stats(values: torch.Tensor) -> float:
        parts = torch.split(values, sizes)
        return float(sum(score.from_stats(part) for score, part in zip(scores, parts, strict=True)) / len(scores))

    def compute(outputs: torch.Tensor, y: torch.Tensor) -> float:
        return sum(score.compute(outputs, y) for score in scores) / len(scores)

    return Metric(MEAN_SCORE, "multitask", True, compute, stats, from_stats)


@dataclass(frozen=True)
class MultiTaskType(Task):
    """The task type of a model with one head per task: the loss is the tasks' losses summed, the metrics
    are each task's (``<task>_<metric>``) and their average score (``mean_score``)."""

    tasks: tuple[TaskSpec, ...] = ()
    table: dict[str, Metric] = field(default_factory=dict, compare=False, repr=False)

    def metric(self, name: str) -> Metric:
        if name not in self.table:
            raise ConfigError(
                f"the tasks have no metric {name!r}{did_you_mean(name, self.table)}; known: {', '.join(self.table)}"
            )
        return self.table[name]

    def monitored(self, monitor: str) -> tuple[str, bool]:
        return monitored(monitor, self.val_metrics, self.metric, "these tasks")


def multitask_type(tasks: Sequence[TaskSpec], monitor: str = f"val_{MEAN_SCORE}") -> MultiTaskType:
    """The task type of a model whose heads are ``tasks`` (in this order)."""
    tasks = tuple(tasks)
    slices = output_slices(tasks)
    table: dict[str, Metric] = {}
    scores, sizes = [], []
    for task in tasks:
        base = TASKS[task.type]
        for name in base.val_metrics:
            table[f"{task.name}_{name}"] = _task_metric(task, slices[task.name], base.metric(name))
        score = table[f"{task.name}_{SCORE[task.type]}"]
        scores.append(score)
        sizes.append(_stat_size(task, base.metric(SCORE[task.type])))
    table[MEAN_SCORE] = _mean_metric(scores, sizes)

    def loss_sum(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return sum(TASKS[t.type].loss_sum(outputs[:, slices[t.name]], t.targets(y)) for t in tasks)

    def predict(outputs: torch.Tensor) -> torch.Tensor:
        return torch.cat([TASKS[t.type].predict(outputs[:, slices[t.name]]) for t in tasks], dim=-1)

    return MultiTaskType(
        "multitask", "multitask", MEAN_SCORE, tuple(table), monitor, loss_sum, predict, tasks=tasks, table=table
    )
