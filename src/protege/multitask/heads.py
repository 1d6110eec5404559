"""One head per task over a model's shared features: the model's last linear layer (the head a builtin,
timm, torchvision or Hugging Face classifier has) becomes a ``ModuleDict`` of linear heads, one per task,
whose outputs are concatenated in the tasks' order. The rest of the model is the shared backbone."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from protege.errors import ModelError


class TaskHeads(nn.Module):
    """A linear head per task over the same features; ``forward`` concatenates their outputs."""

    def __init__(self, in_features: int, widths: dict[str, int]):
        super().__init__()
        self.heads = nn.ModuleDict({name: nn.Linear(in_features, width) for name, width in widths.items()})

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.cat([head(features) for head in self.heads.values()], dim=-1)


def _last_linear(module: nn.Module, width: int) -> tuple[nn.Module, str, nn.Linear]:
    """The parent, attribute name and module of the last linear layer, which must give ``width`` outputs."""
    found = [(name, m) for name, m in module.named_modules() if isinstance(m, nn.Linear)]
    if not found or found[-1][1].out_features != width:
        raise ModelError(
            f"the model has no final linear head of {width} outputs to split into one head per task; "
            "use a builtin, timm, torchvision or Hugging Face classifier"
        )
    path, linear = found[-1]
    parent_path, _, attribute = path.rpartition(".")
    return module.get_submodule(parent_path) if parent_path else module, attribute, linear


def attach_heads(module: nn.Module, widths: dict[str, int]) -> TaskHeads:
    """Replace ``module``'s final linear layer (of ``sum(widths)`` outputs) by one head per task, each
    starting from its rows of that layer (so the initial outputs are unchanged); returns the heads."""
    parent, attribute, linear = _last_linear(module, sum(widths.values()))
    heads = TaskHeads(linear.in_features, widths)
    start = 0
    with torch.no_grad():
        for name, width in widths.items():
            heads.heads[name].weight.copy_(linear.weight[start : start + width])
            heads.heads[name].bias.copy_(linear.bias[start : start + width])
            start += width
    setattr(parent, attribute, heads.to(linear.weight.device, linear.weight.dtype))
    return heads


def heads_of(module: nn.Module) -> TaskHeads:
    """The model's task heads (there is one set)."""
    for child in module.modules():
        if isinstance(child, TaskHeads):
            return child
    raise ModelError("the model has no task heads; build it for a multitask recipe")


def card_widths(tasks: Sequence[dict]) -> dict[str, int]:
    """Each task's head width from the tasks a model card records."""
    return {entry["name"]: len(entry["names"]) for entry in tasks}


class TaskOutputs(nn.Module):
    """A multi-head model whose forward returns each task's outputs apart (an ONNX output per task)."""

    def __init__(self, model: nn.Module, widths: dict[str, int]):
        super().__init__()
        self.model, self.widths = model, list(widths.values())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(torch.split(self.model(x), self.widths, dim=-1))
