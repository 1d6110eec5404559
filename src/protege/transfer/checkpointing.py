"""Gradient checkpointing that keeps gradients flowing past frozen layers.

Reentrant checkpointing (``use_reentrant=True``, long PyTorch's default) returns no gradient for a
block whose inputs do not require one, which is exactly the case after frozen embeddings: the block's own
weights then silently never train. Non-reentrant checkpointing has no such condition.
"""

from __future__ import annotations

import functools

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from protege.models.taps import resolve_module


def enable_gradient_checkpointing(model: nn.Module, block_paths: list[str], use_reentrant: bool = False) -> None:
    """Recompute each block's activations in the backward pass instead of storing them.

    Hugging Face models get their own switch (non-reentrant); other models get each block's forward
    wrapped, which leaves module paths and state-dict names unchanged.
    """
    hf = [m for m in model.modules() if getattr(m, "supports_gradient_checkpointing", False)]
    if hf:
        for module in hf:
            kwargs = {"use_reentrant": use_reentrant}
            if callable(getattr(module, "activation_checkpointing_enable", None)):  # transformers >= 5.x
                module.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
            else:
                module.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        return
    for path in block_paths:
        block = resolve_module(model, path)
        block.forward = _checkpointed(block, block.forward, use_reentrant)


def _checkpointed(block: nn.Module, forward, use_reentrant: bool):
    @functools.wraps(forward)
    def run(*args, **kwargs):
        if block.training and torch.is_grad_enabled():
            return checkpoint(forward, *args, use_reentrant=use_reentrant, **kwargs)
        return forward(*args, **kwargs)

    return run
