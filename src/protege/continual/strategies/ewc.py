"""``ewc``: online Elastic Weight Consolidation (Kirkpatrick et al. 2017; the online form of Schwarz et
al. 2018, "Progress & Compress"): after each experience the diagonal Fisher is added to the decayed
running one, F ← γ·F + F_new, the anchor moves to the current weights, and later experiences pay
λ/2 · Σ F (θ − θ*)² (protege.continual.strategies.penalty)."""

from __future__ import annotations

import abc
from typing import Annotated

import torch
from pydantic import Field, NonNegativeFloat
from torch import nn

from protege.continual.importance import fisher_diagonal, mas_importance
from protege.continual.strategies.base import ContinualStrategy, prefixed, sub_state
from protege.continual.strategies.penalty import QuadraticPenalty
from protege.continual.streams import Experience
from protege.hooks import Hook


class ImportancePenalty(ContinualStrategy, abc.ABC):
    """A penalty on moving parameters that earlier experiences found important; subclasses say how
    importance is measured."""

    def __init__(self, strength: NonNegativeFloat, decay: float):
        super().__init__()
        self.strength, self.decay = strength, decay
        self.importance: dict[str, torch.Tensor] = {}
        self.anchor: dict[str, torch.Tensor] = {}

    @abc.abstractmethod
    def measure(self, model: nn.Module, experience: Experience) -> dict[str, torch.Tensor]:
        """Each parameter's importance to what ``model`` learned on ``experience``."""

    def hooks(self, experience: Experience) -> list[Hook]:
        if not self.importance:
            return []
        return [QuadraticPenalty(self.name, self.strength, self.importance, self.anchor)]

    def end(self, model: nn.Module, experience: Experience) -> None:
        new = self.measure(model, experience)
        merged = {}
        for name, value in new.items():
            old = self.importance.get(name)
            if old is not None and old.shape != value.shape:  # a grown head: its old rows keep their history
                old = torch.cat([old, torch.zeros_like(value[old.shape[0] :])])
            merged[name] = value if old is None else self.decay * old + value
        self.importance = merged
        self.anchor = {name: p.detach().float().cpu().clone() for name, p in model.named_parameters() if name in merged}

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {**prefixed(self.importance, "importance"), **prefixed(self.anchor, "anchor")}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.importance, self.anchor = sub_state(state, "importance"), sub_state(state, "anchor")


class EWC(ImportancePenalty):
    name = "ewc"

    def __init__(
        self,
        strength: NonNegativeFloat = 100.0,
        decay: Annotated[float, Field(ge=0, le=1)] = 1.0,
    ):
        super().__init__(strength, decay)

    def measure(self, model: nn.Module, experience: Experience) -> dict[str, torch.Tensor]:
        return fisher_diagonal(model, self.train_set(experience))


class MAS(ImportancePenalty):
    """``mas``: Memory Aware Synapses (Aljundi et al. 2018): importance from the sensitivity of the outputs'
    squared norm, no labels needed; importances of successive experiences add up (decay 1)."""

    name = "mas"

    def __init__(
        self,
        strength: NonNegativeFloat = 1.0,
        decay: Annotated[float, Field(ge=0, le=1)] = 1.0,
    ):
        super().__init__(strength, decay)

    def measure(self, model: nn.Module, experience: Experience) -> dict[str, torch.Tensor]:
        return mas_importance(model, self.train_set(experience))
