"""The contract of a continual-learning strategy: what it trains each experience on, with which step and
hooks, what it keeps once the experience is over (a buffer, importances, class means), and which model
answers at test time. A strategy's kept state is tensors only (``state_dict``), saved after every
experience next to the experience's model and checkpointed with the hooks during it.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from protege.continual.config import SCENARIOS
from protege.continual.steps import ContinualStep
from protege.continual.streams import Experience, Stream, TaggedDataset, join
from protege.engine.step import Step
from protege.errors import ConfigError
from protege.hooks import Hook
from protege.objectives import Objective


class ContinualStrategy:
    """Naive fine-tuning: each experience trains on its own data only (the lower bound)."""

    name: ClassVar[str] = "naive"
    previous_as_teacher: ClassVar[bool] = False
    """The previous experience's model teaches this one (its logits reach the step as the teacher's)."""
    scenarios: ClassVar[tuple[str, ...]] = SCENARIOS
    why_not: ClassVar[str] = ""
    """Why the strategy does not fit the other scenarios (the error says it)."""

    def __init__(self) -> None:
        self.stream: Stream | None = None
        self.seed = 0

    def start(self, stream: Stream, seed: int) -> None:
        """Before the first experience."""
        self.stream, self.seed = stream, seed

    @property
    def ready_stream(self) -> Stream:
        assert self.stream is not None, "start() the strategy first"
        return self.stream

    def train_set(self, experience: Experience) -> TaggedDataset:
        return experience.train

    def val_set(self, experience: Experience) -> TaggedDataset | None:
        """Validation on every experience seen so far: the best epoch is the one that forgets least."""
        parts = [e.val for e in self.ready_stream.seen(experience.number) if e.val is not None]
        return join(parts) if parts else None

    def step(self, objective: Objective, experience: Experience) -> Step:
        return ContinualStep(objective, self.task_classes(experience))

    def task_classes(self, experience: Experience) -> torch.Tensor | None:
        """The task-incremental mask for the outputs the model has during ``experience``."""
        stream = self.ready_stream
        if not stream.task_aware:
            return None
        return stream.task_classes(len(stream.known_classes(experience.number)))

    def hooks(self, experience: Experience) -> list[Hook]:
        return []

    def end(self, model: nn.Module, experience: Experience) -> None:
        """After training on ``experience``: keep what the next experiences need."""

    def classifier(self, model: nn.Module) -> nn.Module:
        """The model that answers at test time."""
        return model

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore what ``state_dict`` returned."""

    def state_bytes(self) -> int:
        """Memory the strategy keeps between experiences (buffers, importances, means)."""
        return sum(t.numel() * t.element_size() for t in self.state_dict().values())


def sub_state(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries of ``state`` under ``prefix.``, without it."""
    return {key.removeprefix(prefix + "."): value for key, value in state.items() if key.startswith(prefix + ".")}


def prefixed(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{key}": value for key, value in state.items()}


def check_scenario(strategy: type[ContinualStrategy], scenario: str) -> None:
    """Refuse a strategy on a scenario it is not made for, in one line."""
    if scenario not in strategy.scenarios:
        raise ConfigError(
            f"continual strategy {strategy.name!r} does not fit a {scenario.replace('_', '-')} stream: "
            f"{strategy.why_not}"
        )
