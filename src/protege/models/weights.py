"""Load a local weights file (``weights: path``) into a library backbone, leaving out its old head."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from protege.console import log
from protege.errors import CheckpointError


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """Tensors from ``.safetensors``, or from ``.pth``/``.pt``/``.bin`` with ``weights_only=True`` (no pickled code)."""
    if not path.is_file():
        raise CheckpointError(f"weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"cannot read weights {path}: {str(exc).splitlines()[0]}") from None
    for key in ("state_dict", "model"):  # common training-script wrappers
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} holds no plain name→tensor state dict")
    return state


def load_backbone_weights(backbone: nn.Module, path: str | Path, skip: list[str]) -> None:
    """Load ``path`` into ``backbone``: tensors of the old classifier (module paths in ``skip``) and a
    ``backbone.`` prefix (a protege model file) are dropped; anything else missing or mis-shaped is an error."""
    path = Path(path).expanduser()
    state = read_state(path)
    if any(k.startswith("backbone.") for k in state):
        state = {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}
    own = backbone.state_dict()
    skipped = sorted(k for k in state if any(k == s or k.startswith(s + ".") for s in skip) or k not in own)
    kept = {k: v for k, v in state.items() if k not in skipped}
    missing = [k for k in own if k not in kept]
    if missing:
        raise CheckpointError(f"weights {path} lack {len(missing)} backbone tensors (first: {missing[0]})")
    for key, value in kept.items():
        if value.shape != own[key].shape:
            raise CheckpointError(
                f"weights {path}: {key} has shape {tuple(value.shape)}, the model needs {tuple(own[key].shape)}"
            )
    backbone.load_state_dict(kept)
    if skipped:
        log(f"weights {path.name}: loaded {len(kept)} tensors, skipped {len(skipped)} ({', '.join(skipped[:4])})")
