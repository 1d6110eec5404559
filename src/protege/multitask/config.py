"""The ``multitask:`` block of a recipe: the tasks (each a name, its label column(s), its task type and an
optional loss weight), how their losses combine, what picks the best epoch, and teachers to load instead
of training. The tasks live in their own block, not in ``data:``, because a task is more than a column:
its type, weight and teacher travel with it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from protege.named import NamedOptions

TASK_TYPES = ("classification", "multilabel", "regression")
GRADIENT_METHODS = ("pcgrad", "upgrad", "mgda", "mean", "imtl_g", "dualproj", "aligned_mtl")
"""Combinations that aggregate the tasks' gradients on the shared parameters (torchjd's aggregators)."""
LOSS_METHODS = ("equal", "uncertainty")
COMBINE_METHODS = (*LOSS_METHODS, *GRADIENT_METHODS)


class TaskConfig(BaseModel):
    """One task: its name, the label column(s) it reads, its type (protege.tasks) and its loss weight."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$", description="letters, digits and '_', starting with a letter")
    columns: list[str] = Field(min_length=1, description="the label column(s) of the data this task reads")
    type: Literal["classification", "multilabel", "regression"] = "classification"
    weight: float = Field(1.0, gt=0, description="the task loss's weight (equal and gradient methods)")

    @field_validator("columns", mode="before")
    @classmethod
    def _one_column(cls, value: Any) -> Any:
        """``columns: left`` stands for ``columns: [left]``."""
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_class_column(self) -> TaskConfig:
        if self.type == "classification" and len(self.columns) != 1:
            raise ValueError(f"task {self.name!r}: a classification task reads one label column, got {self.columns}")
        return self


class CombineConfig(NamedOptions):
    """How the task losses become one update: equal, uncertainty, or a torchjd aggregator, and its options."""


class MultitaskConfig(BaseModel):
    """Several tasks learnt by one model with a head per task (docs/multitask.md)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    tasks: list[TaskConfig] = Field(min_length=1, description="the tasks, each with its own head")
    combine: CombineConfig = Field(default_factory=lambda: CombineConfig(name="equal"))
    monitor: str = Field(
        "val_mean_score",
        pattern=r"^val_[A-Za-z0-9_]+$",
        description="picks the best epoch: val_mean_score (the tasks' average score), val_loss or "
        "val_<task>_<metric> (val_left_accuracy)",
    )
    teacher_sources: dict[str, str] = Field(
        default_factory=dict,
        description="task name -> run:path of a saved single-task teacher to load instead of training one",
    )
    temperature: float = Field(4.0, gt=0, description="the distillation temperature of classification heads")
    alpha: float = Field(0.5, ge=0, le=1, description="the share of the teacher's signal in each head's loss")

    @field_validator("combine", mode="before")
    @classmethod
    def _name_alone(cls, value: Any) -> Any:
        """``combine: pcgrad`` stands for ``combine: {name: pcgrad}``."""
        return {"name": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _distinct(self) -> MultitaskConfig:
        names = [task.name for task in self.tasks]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"task {twice[0]!r} is named twice; give each task its own name")
        if "mean_score" in names:
            raise ValueError("'mean_score' names the tasks' average; call the task something else")
        return self

    @property
    def names(self) -> list[str]:
        return [task.name for task in self.tasks]
