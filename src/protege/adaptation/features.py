"""Where the domain heads read the model's features: the input of its classification head (the
penultimate representation, as DANN, CDAN and MDD use it) by default, or the output of a named module
(protege.models.taps), flattened to one vector per example."""

from __future__ import annotations

from types import TracebackType

import torch
from torch import nn

from protege.errors import ConfigError, ProtegeError
from protege.models.taps import FeatureTaps
from protege.transfer.split import find_head


def head_path(model: nn.Module) -> str:
    """The model's head, or one line asking for ``adaptation.features``."""
    try:
        return find_head(model)
    except ProtegeError:
        raise ConfigError(
            f"adaptation: cannot tell the head of {type(model).__name__}, whose input the domain heads read; "
            "set adaptation.features to a module path"
        ) from None


class FeatureReader:
    """While open, ``value`` holds the features of the last forward pass, shaped (batch, dimension)."""

    def __init__(self, model: nn.Module, path: str | None = None):
        self.path = path
        self._tap: FeatureTaps | None = None
        self._handle: torch.utils.hooks.RemovableHandle | None = None
        self._value: torch.Tensor | None = None
        if path is None:
            self._head = dict(model.named_modules())[head_path(model)]
        else:
            self._tap = FeatureTaps(model, [path])

    def _record_input(self, module: nn.Module, inputs: tuple) -> None:
        self._value = inputs[0]

    def __enter__(self) -> FeatureReader:
        if self._tap is not None:
            self._tap.__enter__()
        else:
            self._handle = self._head.register_forward_pre_hook(self._record_input)
        return self

    def __exit__(self, kind: type | None, error: BaseException | None, trace: TracebackType | None) -> None:
        if self._tap is not None:
            self._tap.__exit__(kind, error, trace)
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        self._value = None

    @property
    def value(self) -> torch.Tensor:
        value = self._tap[self.path] if self._tap is not None and self.path is not None else self._value
        if value is None:
            raise RuntimeError("no features yet: run a forward pass inside the reader first")
        return value.flatten(1)


@torch.no_grad()
def feature_dim(model: nn.Module, path: str | None, sample: torch.Tensor) -> int:
    """The features' size on ``sample``, in eval mode (BatchNorm statistics untouched)."""
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        with FeatureReader(model, path) as reader:
            model(sample.to(device))
            return int(reader.value.shape[1])
    finally:
        model.train(was_training)


@torch.no_grad()
def extract(model: nn.Module, path: str | None, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """The features of every input of ``x`` (eval mode, on the CPU)."""
    model = model.cpu().eval()
    out = []
    with FeatureReader(model, path) as reader:
        for start in range(0, len(x), batch_size):
            model(x[start : start + batch_size])
            out.append(reader.value.float().clone())
    return torch.cat(out)
