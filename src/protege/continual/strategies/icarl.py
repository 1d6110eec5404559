"""``icarl``: incremental Classifier and Representation Learning (Rebuffi et al. 2017): a class-balanced
set of exemplars chosen by herding joins each experience's data; the network learns with a sigmoid per
class, distilled on the old classes from its previous copy; at test time an example goes to the class
with the nearest mean exemplar feature (protege.continual.features.NearestMeanClassifier)."""

from __future__ import annotations

import torch
from pydantic import PositiveInt
from torch import nn

from protege.continual.buffers import ReplayBuffer
from protege.continual.features import NearestMeanClassifier, class_means, head_inputs
from protege.continual.steps import ICaRLStep
from protege.continual.strategies.base import ContinualStrategy, prefixed, sub_state
from protege.continual.streams import Experience, TaggedDataset, join
from protege.engine.step import Step
from protege.objectives import Objective


class ICaRL(ContinualStrategy):
    name = "icarl"
    previous_as_teacher = True
    scenarios = ("class_incremental", "task_incremental")
    why_not = (
        "it distils the old classes' outputs and keeps exemplars per class, and a domain stream has every class "
        "from the start: use replay, der or lwf"
    )

    def __init__(self, buffer_size: PositiveInt = 200):
        super().__init__()
        self.buffer_size = buffer_size
        self.buffer = ReplayBuffer(buffer_size, "herding")
        self.means = torch.zeros(0)

    def start(self, stream, seed: int) -> None:
        super().start(stream, seed)
        self.buffer = ReplayBuffer(self.buffer_size, "herding", seed)

    def train_set(self, experience: Experience) -> TaggedDataset:
        """The new data joined with the exemplars, one training set (Alg. 3)."""
        if self.buffer.data is None:
            return experience.train
        return join([experience.train, self.buffer.data])

    def step(self, objective: Objective, experience: Experience) -> Step:
        old = len(self.ready_stream.known_classes(experience.number - 1)) if experience.number > 1 else 0
        return ICaRLStep(objective, old, self.task_classes(experience))

    def end(self, model: nn.Module, experience: Experience) -> None:
        self.buffer.add(experience.train, experience.number, head_inputs(model, experience.train.x))
        exemplars = self.buffer.data
        assert exemplars is not None
        known = len(self.ready_stream.known_classes(experience.number))
        self.means = class_means(head_inputs(model, exemplars.x), exemplars.y, known)

    def classifier(self, model: nn.Module) -> nn.Module:
        return NearestMeanClassifier(model, self.means) if len(self.means) else model

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {**prefixed(self.buffer.state_dict(), "buffer"), "means": self.means}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.buffer.load_state_dict(sub_state(state, "buffer"))
        self.means = state["means"]
