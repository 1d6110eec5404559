"""``l2sp`` (Li, Grandvalet & Davoine 2018, "Explicit inductive bias for transfer learning with
convolutional networks"): fine-tuning pulled towards the pretrained weights instead of towards zero.

    Ω(w) = α/2 · ‖w_S − w_S⁰‖² + β/2 · ‖w_S̄‖²

where S are the backbone's parameters (w⁰ their pretrained values) and S̄ the new head's. The penalty
replaces weight decay, so the optimizer applies none.
"""

from __future__ import annotations

import torch
from pydantic import NonNegativeFloat
from torch import nn

from protege.options import Scale
from protege.transfer.finetune import Finetune


class L2SP(Finetune):
    """Everything trains (the backbone at ``backbone_lr_scale``), with the L2-SP penalty as a loss term."""

    name = "l2sp"
    replaces_weight_decay = True

    def __init__(
        self, alpha: NonNegativeFloat = 0.1, beta: NonNegativeFloat = 0.01, backbone_lr_scale: Scale = 1.0, **common
    ):
        super().__init__(backbone_lr_scale=backbone_lr_scale, **common)
        self.alpha = alpha
        self.beta = beta
        self._anchored: list[tuple[nn.Parameter, torch.Tensor]] = []
        self._head: list[nn.Parameter] = []

    def prepare(self, model: nn.Module) -> nn.Module:
        model = super().prepare(model)
        split = self.prepared_split()
        self._head = list(split.groups[0].params.values())
        self._anchored = [(p, p.detach().clone()) for group in split.groups[1:] for p in group.params.values()]
        return model

    def loss_terms(self) -> dict[str, torch.Tensor]:
        if self._anchored and self._anchored[0][1].device != self._anchored[0][0].device:
            self._anchored = [(p, w0.to(p.device)) for p, w0 in self._anchored]
        start = sum((p.float() - w0.float()).pow(2).sum() for p, w0 in self._anchored)
        head = sum(p.float().pow(2).sum() for p in self._head)
        return {"l2sp": 0.5 * self.alpha * start + 0.5 * self.beta * head}
