"""The trained part alone (a linear probe's head, a LoRA adapter), saved next to the full model and
reloaded onto the pretrained backbone: a few kilobytes per task instead of a copy of the backbone.

One safetensors file; its metadata says what it holds and how to put it back.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from protege.errors import CheckpointError
from protege.models.taps import resolve_module
from protege.transfer.base import Strategy

HEAD_FILE = "head.safetensors"
ADAPTER_FILE = "adapter.safetensors"


def trained_part(strategy: Strategy, model: nn.Module) -> tuple[str, dict[str, torch.Tensor], dict] | None:
    """(file name, tensors, metadata) of what ``strategy`` trained apart from a frozen backbone, or None
    when the whole model trained. ``model`` is the finished (merged) model."""
    from protege.transfer.linear_probe import LinearProbe
    from protege.transfer.lora import LoRA

    if isinstance(strategy, LoRA) and strategy.adapter_state:
        meta = {"kind": "lora", "config": strategy.adapter_config}
        return ADAPTER_FILE, strategy.adapter_state, meta
    if isinstance(strategy, LinearProbe) and strategy.split is not None:
        head = strategy.split.head_path
        state = resolve_module(model, head).state_dict()
        return (
            HEAD_FILE,
            {k: v.detach().cpu().contiguous().clone() for k, v in state.items()},
            {"kind": "head", "head": head},
        )
    return None


def save_trained_part(strategy: Strategy, model: nn.Module, directory: Path) -> Path | None:
    """Write the trained part into ``directory`` atomically; None when there is no separate part."""
    part = trained_part(strategy, model)
    if part is None:
        return None
    name, tensors, meta = part
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={"protege": json.dumps(meta)})
        os.replace(tmp, directory / name)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return directory / name


def load_trained_part(model: nn.Module, path: str | Path) -> nn.Module:
    """Put a saved head or adapter onto ``model`` (the pretrained backbone) and return the plain model."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = json.loads((handle.metadata() or {}).get("protege", "{}"))
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except Exception as exc:  # safetensors raises its own error type for a corrupt header
        raise CheckpointError(f"cannot read {path}: {exc}") from None
    if meta.get("kind") == "head":
        head = resolve_module(model, meta["head"])
        try:
            head.load_state_dict(tensors)
        except RuntimeError as exc:
            raise CheckpointError(
                f"{path} does not fit the head {meta['head']!r}: {str(exc).splitlines()[-1].strip()}"
            ) from None
        return model
    if meta.get("kind") == "lora":
        from peft import get_peft_model, set_peft_model_state_dict

        from protege.transfer.lora import lora_config

        wrapped = get_peft_model(model, lora_config(meta["config"]))
        result = set_peft_model_state_dict(wrapped, tensors)
        if result.unexpected_keys:
            raise CheckpointError(f"{path} does not fit the model: unexpected {result.unexpected_keys[0]!r}")
        return wrapped.merge_and_unload()
    raise CheckpointError(f"{path} is not a protege head or adapter file")
