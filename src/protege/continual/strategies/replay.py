"""``replay``: experience replay (Chaudhry et al. 2019, "On Tiny Episodic Memories in Continual
Learning"; Rolnick et al. 2019): a fixed-size buffer of past examples joins each experience's training
data. The buffer is repeated up to the size of the new data, so each batch is about half new, half
replayed, as Avalanche's replay loader draws one batch from each."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import PositiveInt
from torch import nn

from protege.continual.buffers import ReplayBuffer
from protege.continual.strategies.base import ContinualStrategy, prefixed, sub_state
from protege.continual.streams import Experience, TaggedDataset, join


def balanced_union(new: TaggedDataset, buffer: TaggedDataset | None) -> TaggedDataset:
    """The new examples and the buffer, its examples repeated (in turn) up to as many as the new ones,
    each replayed one flagged ``replayed``."""
    flag = torch.zeros(len(new), dtype=torch.bool)
    if buffer is None or len(buffer) == 0:
        return TaggedDataset(new.x, new.y, new.labeled, {**new.extras, "replayed": flag})
    repeats = torch.arange(max(len(new), len(buffer))) % len(buffer)
    replayed = buffer.subset(repeats)
    replayed.extras["replayed"] = torch.ones(len(replayed), dtype=torch.bool)
    return join([TaggedDataset(new.x, new.y, new.labeled, {**new.extras, "replayed": flag}), replayed])


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
        return balanced_union(experience.train, self.buffer.data)

    def end(self, model: nn.Module, experience: Experience) -> None:
        self.buffer.add(experience.train, experience.number)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return prefixed(self.buffer.state_dict(), "buffer")

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.buffer.load_state_dict(sub_state(state, "buffer"))
