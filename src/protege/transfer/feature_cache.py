"""A linear probe on cached features: the frozen backbone runs once over the data, then only the head
trains, on its outputs, so a probe over thousands of examples takes seconds.

Exact (same result as running the backbone every step) when the backbone is frozen in eval mode and every
example's input is fixed: in-memory data, no random augmentation, no objective that taps inner layers or
needs a teacher. Anything else trains with the backbone online, and the log says why.
"""

from __future__ import annotations

import torch
from torch import nn

from protege.data.dataset import ArrayDataset, batch_loader
from protege.models.taps import resolve_module


class HeadOnly(nn.Module):
    """The model's ``forward_head`` on precomputed features; only the head's parameters are registered."""

    def __init__(self, model: nn.Module, head_path: str):
        super().__init__()
        self.head = resolve_module(model, head_path)
        object.__setattr__(self, "_model", model)  # not a submodule: its backbone must not be optimised

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self._model.forward_head(features)


def cache_refusal(model: nn.Module, train: object, val: object, needs_teacher: bool, taps: bool) -> str | None:
    """Why features cannot be cached for this run, or None when they can."""
    if not (callable(getattr(model, "forward_features", None)) and callable(getattr(model, "forward_head", None))):
        return "the model has no forward_features/forward_head"
    if not isinstance(train, ArrayDataset) or not (val is None or isinstance(val, ArrayDataset)):
        return "the data is not an in-memory data set (its inputs may change between epochs)"
    if needs_teacher:
        return "the objective needs a teacher"
    if taps:
        return "the objective reads inner layers"
    return None


@torch.no_grad()
def compute_features(model: nn.Module, data: ArrayDataset, device: torch.device, batch_size: int = 256) -> ArrayDataset:
    """The backbone's features of every example (eval mode), on the CPU, with the examples' targets."""
    model.eval()
    chunks = []
    for batch in batch_loader(data, batch_size, shuffle=False, seed=0):
        chunks.append(model.forward_features(batch["x"].to(device)).float().cpu())
    return ArrayDataset(torch.cat(chunks), data.y)
