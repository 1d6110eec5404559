"""``joint``: every experience trains on the data of all experiences so far (cumulative training), the
upper bound of a stream (van de Ven et al. 2022, "Joint"); it keeps every example, which is what the
other strategies avoid."""

from __future__ import annotations

from protege.continual.strategies.base import ContinualStrategy
from protege.continual.streams import Experience, TaggedDataset, join


class Joint(ContinualStrategy):
    name = "joint"

    def train_set(self, experience: Experience) -> TaggedDataset:
        return join([e.train for e in self.ready_stream.seen(experience.number)])

    def __init__(self) -> None:
        super().__init__()
        self.done = 0

    def end(self, model, experience: Experience) -> None:
        self.done = experience.number

    def state_bytes(self) -> int:
        """It keeps every training example seen so far (the stream holds them here)."""
        return sum(e.train.x.numel() * e.train.x.element_size() for e in self.ready_stream.seen(self.done))
