"""Several single-task teachers as one teacher of a multi-head student: each teacher's outputs sit in its
task's slice, so the concatenation has the student's layout and protege.distill's teacher signal (cached
when exact: frozen teachers, unchanged inputs) serves every head from its own teacher."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from protege.errors import ModelError
from protege.models import ModelCard
from protege.multitask.layout import TaskSpec


class TaskTeachers(nn.Module):
    """One frozen teacher per task; ``forward`` gives their outputs side by side in the tasks' order."""

    def __init__(self, teachers: dict[str, nn.Module]):
        super().__init__()
        self.teachers = nn.ModuleDict(teachers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([teacher(x) for teacher in self.teachers.values()], dim=-1)


def check_teacher(task: TaskSpec, card: ModelCard, source: str) -> None:
    """A loaded teacher must give the task's outputs in the task's order (its classes, labels or targets)."""
    names = [name.partition(":")[2] if ":" in name else name for name in card.class_names]
    if names != list(task.names):
        shown = ", ".join(names[:10])
        raise ModelError(
            f"{source}: a teacher of task {task.name!r} gives outputs {shown}; the task has "
            f"{', '.join(task.names[:10])}"
        )


def in_task_order(tasks: Sequence[TaskSpec], teachers: dict[str, nn.Module]) -> TaskTeachers:
    """The teachers of ``tasks``, in the tasks' order (the student's output layout)."""
    return TaskTeachers({task.name: teachers[task.name] for task in tasks})
