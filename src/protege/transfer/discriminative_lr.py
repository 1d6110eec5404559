"""``discriminative_lr``: layer-wise learning-rate decay from the head down, as timm and BEiT/ELECTRA
fine-tuning do: a group ``d`` blocks below the head trains at ``lr * decay**d``."""

from __future__ import annotations

from protege.options import Scale
from protege.transfer.base import Strategy
from protege.transfer.split import Group


class DiscriminativeLR(Strategy):
    """Every group trains; the learning rate shrinks by ``decay`` per block from the head to the stem."""

    name = "discriminative_lr"

    def __init__(self, decay: Scale = 0.75, **common):
        super().__init__(**common)
        self.decay = decay

    def lr_scale(self, group: Group) -> float:
        return self.decay**group.depth
