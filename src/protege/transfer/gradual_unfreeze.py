"""``gradual_unfreeze`` (Howard & Ruder 2018, ULMFiT): the head trains first, then one more block from the
top down joins every ``every`` epochs, until the stem trains too."""

from __future__ import annotations

from pydantic import PositiveInt

from protege.options import Scale
from protege.transfer.base import Strategy
from protege.transfer.split import Group


class GradualUnfreeze(Strategy):
    """Group ``d`` blocks below the head unfreezes at epoch ``d * every``; ``lr_decay`` < 1 adds ULMFiT's
    discriminative learning rates (``lr * lr_decay**d``)."""

    name = "gradual_unfreeze"

    def __init__(self, every: PositiveInt = 1, lr_decay: Scale = 1.0, **common):
        super().__init__(**common)
        self.every = every
        self.lr_decay = lr_decay

    def trainable(self, group: Group, epoch: int) -> bool:
        return group.depth <= epoch // self.every

    def lr_scale(self, group: Group) -> float:
        return self.lr_decay**group.depth
