"""Feature taps: capture intermediate outputs of any model by module path (``features.2``,
``layer3``, ``encoder.layer.5``) with forward hooks, as FitNet hints and attention transfer need.

A module that returns a tuple is read at its first element, or at the element a ``:index`` suffix
names (``encoder.layer.3.attention.self:1``: a Hugging Face attention module's probabilities).
Hooks are removed when the tap closes, so a model leaves a ``with`` block exactly as it entered.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from types import TracebackType

import torch
from torch import nn

from protege.errors import ModelError


def split_output_index(path: str) -> tuple[str, int]:
    """``'a.b:1'`` -> ``('a.b', 1)``; a path without a suffix reads output 0 of a tuple."""
    module_path, sep, index = path.rpartition(":")
    if not sep:
        return path, 0
    if not index.isdigit():
        raise ModelError(f"layer {path!r}: the part after ':' must be an output index such as 1")
    return module_path, int(index)


def module_paths(model: nn.Module) -> list[str]:
    """Every addressable submodule path of ``model`` (the root, '', excluded)."""
    return [name for name, _ in model.named_modules() if name]


def resolve_module(model: nn.Module, path: str) -> nn.Module:
    """The submodule at ``path``; a wrong path gets an error naming the closest valid ones."""
    modules = dict(model.named_modules())
    if path in modules and path:
        return modules[path]
    valid = module_paths(model)
    close = difflib.get_close_matches(path, valid, n=3, cutoff=0.4)
    if not close:
        prefix = path.rsplit(".", 1)[0]
        close = [p for p in valid if p.startswith(prefix)][:3] or valid[:3]
    raise ModelError(
        f"no module {path!r} in {type(model).__name__}; closest: {', '.join(close)} ({len(valid)} paths in all)"
    )


class FeatureTaps:
    """Records the outputs of the modules at ``paths`` on each forward pass while open.

    >>> with FeatureTaps(model, ["features.1"]) as taps:
    ...     logits = model(x)
    ...     hidden = taps["features.1"]
    """

    def __init__(self, model: nn.Module, paths: Iterable[str], detach: bool = False):
        self.paths = list(paths)
        self.modules = {path: resolve_module(model, split_output_index(path)[0]) for path in self.paths}
        self.detach = detach
        self.outputs: dict[str, torch.Tensor] = {}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def _hook(self, path: str):
        module_path, index = split_output_index(path)

        def record(module: nn.Module, inputs: tuple, output) -> None:
            value = output[index] if isinstance(output, (tuple, list)) else output
            if value is None:
                raise ModelError(
                    f"module {module_path!r} returned None at output {index}; for Hugging Face attention "
                    "probabilities set attn_implementation: eager on the hf: model (in Python, load the model "
                    "with attn_implementation='eager')"
                )
            if not isinstance(value, torch.Tensor):
                value = getattr(value, "last_hidden_state", None)
                if value is None:
                    raise ModelError(f"module {module_path!r} returned {type(output).__name__}, not a tensor")
            self.outputs[path] = value.detach() if self.detach else value

        return record

    def __enter__(self) -> FeatureTaps:
        self._handles = [m.register_forward_hook(self._hook(p)) for p, m in self.modules.items()]
        return self

    def __exit__(self, kind: type | None, error: BaseException | None, trace: TracebackType | None) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self.outputs = {}

    def __getitem__(self, path: str) -> torch.Tensor:
        if path not in self.outputs:
            raise KeyError(f"{path!r} produced no output yet: run a forward pass inside the tap first")
        return self.outputs[path]


@torch.no_grad()
def layer_output(model: nn.Module, path: str, sample: torch.Tensor) -> torch.Tensor:
    """The output of ``path`` on ``sample``, in eval mode so BatchNorm statistics stay untouched;
    objectives size their adapters and auxiliary heads from it."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        with FeatureTaps(model, [path]) as taps:
            model(sample.to(device))
            return taps[path].cpu()
    finally:
        model.train(was_training)
