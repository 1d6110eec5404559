"""``replay``: experience replay (Chaudhry et al. 2019, "On Tiny Episodic Memories in Continual
Learning"; Rolnick et al. 2019): a fixed-size buffer of past examples joins each experience's training
data: each training step takes a batch of new examples and a batch of replayed ones
(protege.data.paired), as Avalanche's replay loader does."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import PositiveInt
from torch import nn

from protege.continual.buffers import ReplayBuffer
from protege.continual.strategies.base import ContinualStrategy, prefixed, sub_state
from protege.continual.streams import Experience, TaggedDataset
from protege.data.paired import with_replay


class Replay(ContinualStrategy):
    name = "replay"

    def __init__(
        self, buffer_size: PositiveInt = 200, selection: Literal["reservoir", "class_balanced"] = "class_balanced"
    ):
        super().__init__()
        self.buffer_size, self.selection = buffer_size, selection
        self.buffer = ReplayBuffer(buffer_size, selection)

    def start(self, stream, seed: int) -> None:
        super().start(stream, seed)
        self.buffer = ReplayBuffer(self.buffer_size, self.selection, seed)

    def train_set(self, experience: Experience) -> TaggedDataset:
        return with_replay(experience.train, self.buffer.data)

    def end(self, model: nn.Module, experience: Experience) -> None:
        self.buffer.add(experience.train, experience.number)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return prefixed(self.buffer.state_dict(), "buffer")

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.buffer.load_state_dict(sub_state(state, "buffer"))
