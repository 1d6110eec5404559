"""How BatchNorm behaves while parts of a model are frozen, declared once per recipe and re-applied after
every ``model.train()`` (which would otherwise switch frozen layers back to updating their statistics).

- ``train``: every BatchNorm layer trains as usual, frozen or not (its running statistics drift).
- ``frozen_stats``: BatchNorm layers in frozen parts run in eval mode, so their running statistics are kept.
- ``frozen``: every BatchNorm layer, trained parts included, runs in eval mode with weight and bias fixed
  (as detection fine-tuning does with small batches).
"""

from __future__ import annotations

from typing import Literal

from torch import nn

BatchNormPolicy = Literal["train", "frozen_stats", "frozen"]
POLICIES = ("train", "frozen_stats", "frozen")


def batchnorm_layers(model: nn.Module) -> dict[str, nn.modules.batchnorm._BatchNorm]:
    """Every BatchNorm layer (1-D, 2-D, 3-D, synchronised, timm's BatchNormAct) by module path."""
    return {path: m for path, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}


def apply_batchnorm_policy(
    layers: dict[str, nn.modules.batchnorm._BatchNorm], frozen_paths: set[str], policy: BatchNormPolicy
) -> None:
    """Set the mode (and, for ``frozen``, the trainability) of ``layers``; ``frozen_paths`` are the frozen ones."""
    for path, layer in layers.items():
        if policy == "frozen":
            layer.eval()
            for param in layer.parameters():
                param.requires_grad_(False)
        elif policy == "frozen_stats" and path in frozen_paths:
            layer.eval()
