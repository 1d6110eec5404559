"""``finetune``: everything trains, the pretrained backbone at a lower learning rate than the new head."""

from __future__ import annotations

from protege.options import Scale
from protege.transfer.base import Strategy
from protege.transfer.split import Group


class Finetune(Strategy):
    """All groups train; the backbone's learning rate is ``backbone_lr_scale`` times the head's."""

    name = "finetune"

    def __init__(self, backbone_lr_scale: Scale = 0.1, **common):
        super().__init__(**common)
        self.backbone_lr_scale = backbone_lr_scale

    def lr_scale(self, group: Group) -> float:
        return 1.0 if group.depth == 0 else self.backbone_lr_scale
