"""AdaBN (Li et al. 2018, "Adaptive Batch Normalization for practical domain adaptation", Alg. 1): the
source-trained model with every BatchNorm layer's running mean and variance re-estimated on the target's
inputs, its weights unchanged. The statistics are a cumulative average over the target's batches
(``momentum=None``) from a reset, computed with no gradient and every other layer in eval mode."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from protege.errors import ConfigError

PAPER = "Li et al. 2018, Adaptive Batch Normalization for practical domain adaptation (Pattern Recognition)"


def batchnorm_layers(model: nn.Module) -> list[_BatchNorm]:
    return [module for module in model.modules() if isinstance(module, _BatchNorm)]


def require_batchnorm(model: nn.Module, architecture: str) -> None:
    """AdaBN changes BatchNorm statistics only, so a model without BatchNorm would leave it nothing to do."""
    if not batchnorm_layers(model):
        raise ConfigError(
            f"adaptation.methods: adabn re-estimates BatchNorm statistics, and the student ({architecture}) has "
            "no BatchNorm layer: use a model with BatchNorm (cnn2d, resnet) or remove adabn"
        )


@torch.no_grad()
def adapt_batchnorm(model: nn.Module, inputs: torch.Tensor, batch_size: int = 256) -> nn.Module:
    """``model`` (changed in place and returned) with its BatchNorm statistics those of ``inputs``."""
    layers = batchnorm_layers(model)
    modes = [(module, module.training) for module in model.modules()]
    momenta = [layer.momentum for layer in layers]
    device = next(model.parameters()).device
    model.eval()
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # a cumulative average over the batches
        layer.train()
    try:
        for start in range(0, len(inputs), batch_size):
            chunk = inputs[start : start + batch_size]
            if len(chunk) > 1 or start == 0:  # BatchNorm cannot take a batch of one in training mode
                model(chunk.to(device))
    finally:
        for layer, momentum in zip(layers, momenta, strict=True):
            layer.momentum = momentum
        for module, training in modes:
            module.training = training
    return model
