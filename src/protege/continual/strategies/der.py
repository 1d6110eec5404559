"""``der``: Dark Experience Replay (Buzzega et al. 2020, "Dark Experience for General Continual
Learning"): a reservoir buffer keeps examples with the logits the model gave them, and replaying them
matches those logits (``alpha``, squared error) and, for DER++ (``beta`` > 0, the default), their labels.

The logits are recorded when an experience ends (the model's answer once it has learned the examples),
where the paper records them during training; rows of outputs the model did not have yet are NaN and
left out of the error."""

from __future__ import annotations

import torch
from pydantic import NonNegativeFloat, PositiveInt
from torch import nn

from protege.continual.buffers import ReplayBuffer
from protege.continual.steps import DERStep
from protege.continual.strategies.base import ContinualStrategy, prefixed, sub_state
from protege.continual.streams import Experience, TaggedDataset
from protege.data.paired import with_replay
from protege.engine.step import Step
from protege.evaluate import predict_logits
from protege.objectives import Objective


class DER(ContinualStrategy):
    name = "der"

    def __init__(self, buffer_size: PositiveInt = 200, alpha: NonNegativeFloat = 0.3, beta: NonNegativeFloat = 0.5):
        super().__init__()
        self.buffer_size, self.alpha, self.beta = buffer_size, alpha, beta
        self.buffer = ReplayBuffer(buffer_size, "reservoir")

    def start(self, stream, seed: int) -> None:
        super().start(stream, seed)
        self.buffer = ReplayBuffer(self.buffer_size, "reservoir", seed)

    def train_set(self, experience: Experience) -> TaggedDataset:
        return with_replay(experience.train, self.buffer.data)

    def step(self, objective: Objective, experience: Experience) -> Step:
        return DERStep(objective, self.alpha, self.beta, self.task_classes(experience))

    def end(self, model: nn.Module, experience: Experience) -> None:
        total = len(self.ready_stream.class_names)
        logits = predict_logits(model, experience.train).float()
        stored = torch.full((len(logits), total), float("nan"))
        stored[:, : logits.shape[1]] = logits
        examples = experience.train
        tagged = TaggedDataset(examples.x, examples.y, examples.labeled, {**examples.extras, "stored": stored})
        self.buffer.add(tagged, experience.number)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return prefixed(self.buffer.state_dict(), "buffer")

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.buffer.load_state_dict(sub_state(state, "buffer"))
