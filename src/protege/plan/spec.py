"""What one stage of a plan is (:class:`StageSpec`) and what it produced (:class:`StageResult`).

A spec names its model (to build, to load, or to continue from an earlier stage), how it trains (or
that it only loads), its objectives and strategy, which earlier stage teaches it, and its ``role``:
the report and the summary table read roles, never literal stage names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from torch import nn

from protege.config import ModelConfig, StrategyConfig, TrainConfig
from protege.data.dataset import ArrayDataset, DataBundle
from protege.engine import FitResult
from protege.engine.step import Step
from protege.hooks import Hook
from protege.models import ModelCard
from protege.tasks import Task

Role = Literal["teacher", "teacher_member", "baseline", "student", "generation", "hint", "experience"]
"""``teacher``: the model every other one is compared with (one teacher, or the ensemble of several);
``teacher_member``: one of several teachers; ``baseline``: the student trained alone; ``student``: the
run's final model; ``generation``: an earlier born-again generation; ``hint``: a pre-training stage
that is part of another (FitNet's hint stage), neither saved nor reported; ``experience``: one
experience of a continual stream (protege.continual), reported through the stream's own measures."""

ObjectiveSpec = tuple[str, dict, float]
"""(objective name, options, weight)."""


@dataclass(frozen=True)
class StageSpec:
    """One stage to run. ``folder`` (relative to the run directory) holds its checkpoints and its saved
    model; a stage ``part_of`` another is skipped once that one has finished (on resume)."""

    name: str
    role: Role
    model: ModelConfig | None = None
    train: TrainConfig | None = None
    objectives: tuple[ObjectiveSpec, ...] = ()
    strategy: StrategyConfig | None = None
    teacher: str | None = None
    model_from: str | None = None
    seed: int = 0
    transfer: bool = False
    teacher_cache: str = "auto"
    folder: str = ""
    save: bool = True
    part_of: str | None = None
    members: tuple[str, ...] = ()
    """An ensemble's teachers (earlier stages); with ``weights`` and ``temperature``."""
    weights: tuple[float, ...] = ()
    temperature: float = 1.0
    train_set: ArrayDataset | None = None
    """What the stage trains on, when not the run's training split (an experience, with a replay buffer)."""
    val_set: ArrayDataset | None = None
    step: Step | None = None
    """The stage's training step, in place of the supervised step over ``objectives``."""
    hooks: tuple[Hook, ...] = ()
    class_names: tuple[str, ...] | None = None
    """The classes the stage's model predicts, when not all of the data's: a continued model whose head
    has fewer outputs grows to these (protege.models.growth)."""
    teacher_module: nn.Module | None = None
    """A teacher that is no earlier stage (unlearning's pair of a trained and an untrained model)."""
    notes: dict = field(default_factory=dict)
    """Recorded in the saved model's card with its training summary (a continual experience's place in the stream)."""
    heads: tuple[dict, ...] = ()
    """A multi-head model's tasks (protege.multitask): the built model gets one head per task, and its card
    records them."""
    task: Task | None = None
    """The stage's task type, when not the data's (a multi-head model's: protege.multitask.layout)."""

    @property
    def is_ensemble(self) -> bool:
        return bool(self.members)

    @property
    def workdir(self) -> str:
        return self.folder or self.name


@dataclass
class StageResult:
    """A stage's model, its card, its role, and (when it trained here) how training went."""

    name: str
    model: nn.Module
    card: ModelCard
    fit: FitResult | None = None
    model_dir: Path | None = None
    role: Role = "student"
    details: dict = field(default_factory=dict)
    data: DataBundle | None = None
    """The view of the examples the model reads (protege.data.views): its test split is what it is scored on."""
