"""Training checkpoints: weights (safetensors), optimizer and scheduler state, random state, position.

Each checkpoint is a directory built under a temporary name and renamed into place, and the
``latest`` pointer moves only after that, so a crash at any moment leaves the last good one intact.
Loading never unpickles arbitrary objects (``torch.load(weights_only=True)``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from protege.errors import CheckpointError
from protege.models.store import TEMPORARY_SUFFIX, atomic_write_text, load_weights, staging_dir, state_for_saving

CHECKPOINT_VERSION = 1
"""Bumped when the training state a checkpoint holds changes meaning; resume refuses other versions."""


@dataclass
class TrainState:
    """Where training stands: enough to continue exactly as an uninterrupted run would."""

    epoch: int = 0
    batches_done: int = 0
    global_step: int = 0
    history: list[dict] = field(default_factory=list)
    best_value: float | None = None
    best_epoch: int | None = None
    bad_epochs: int = 0
    stopped_early: bool = False
    fingerprint: str | None = None
    sums: dict = field(default_factory=dict)
    skipped_steps: int = 0
    best_weights: dict | None = None
    hooks: dict = field(default_factory=dict)
    """Each hook's checkpointed state, by hook name (protege.hooks)."""

    def to_json(self) -> dict:
        skip = {"sums", "best_weights", "hooks"}
        return {k: v for k, v in self.__dict__.items() if k not in skip}


class Checkpointer:
    """Writes and reads the checkpoints of one training stage in ``directory``."""

    def __init__(self, directory: Path, keep: int = 2):
        self.directory = Path(directory)
        self.keep = keep

    @property
    def best_path(self) -> Path:
        return self.directory / "best.safetensors"

    def save(
        self, state: TrainState, model: nn.Module, optimizer, scheduler, objective: nn.Module, hooks: dict | None = None
    ) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"step-{state.global_step:08d}-e{state.epoch:04d}-b{state.batches_done:06d}"
        staging = staging_dir(self.directory, name)
        try:
            save_file(state_for_saving(model), str(staging / "model.safetensors"))
            if objective.state_dict():  # trainable parts of the loss, such as FitNet's adapter
                save_file(state_for_saving(objective), str(staging / "objective.safetensors"))
            extras = {
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng_cpu": torch.get_rng_state(),
                "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                "sums": {k: v.detach().cpu() for k, v in state.sums.items()},
                "hooks": hooks or {},
            }
            torch.save(extras, staging / "trainer.pt")
            meta = {"checkpoint_version": CHECKPOINT_VERSION, **state.to_json()}
            (staging / "state.json").write_text(json.dumps(meta), encoding="utf-8")
            target = self.directory / name
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        atomic_write_text(self.directory / "latest", name)
        self._prune(keep_name=name)
        return target

    def _prune(self, keep_name: str) -> None:
        saved = sorted(p for p in self.directory.glob("step-*") if p.is_dir())
        for old in saved[: -self.keep]:
            if old.name != keep_name:
                shutil.rmtree(old, ignore_errors=True)

    def latest(self) -> Path | None:
        pointer = self.directory / "latest"
        if not pointer.is_file():
            return None
        path = self.directory / pointer.read_text().strip()
        return path if path.is_dir() else None

    def load_latest(self, model: nn.Module, optimizer, scheduler, objective: nn.Module) -> TrainState | None:
        """Restore model, optimizer, scheduler and random state; None when there is no checkpoint."""
        path = self.latest()
        if path is None:
            return None
        try:
            meta = json.loads((path / "state.json").read_text(encoding="utf-8"))
            extras = torch.load(path / "trainer.pt", map_location="cpu", weights_only=True)
        except Exception as exc:
            raise CheckpointError(f"checkpoint {path} is unreadable ({exc}); delete it to start over") from None
        if meta.get("checkpoint_version", 0) != CHECKPOINT_VERSION:
            raise CheckpointError(
                f"checkpoint {path} has format {meta.get('checkpoint_version', 0)}, this protege reads format "
                f"{CHECKPOINT_VERSION}; resume with the protege version that wrote it, or start a new run directory"
            )
        load_weights(model, path / "model.safetensors")
        if (path / "objective.safetensors").is_file():
            load_weights(objective, path / "objective.safetensors")
        device = next(model.parameters()).device
        optimizer.load_state_dict(extras["optimizer"])
        scheduler.load_state_dict(extras["scheduler"])
        torch.set_rng_state(extras["rng_cpu"])
        if extras["rng_cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(extras["rng_cuda"])
        fields = TrainState.__dataclass_fields__
        state = TrainState(**{k: v for k, v in meta.items() if k in fields})
        state.sums = {k: v.to(device) for k, v in extras["sums"].items()}
        state.hooks = extras.get("hooks", {})  # checkpoints from before hooks had state hold none
        return state

    def save_best(self, model: nn.Module) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".best.", suffix=TEMPORARY_SUFFIX)
        os.close(fd)
        try:
            save_file(state_for_saving(model), tmp)
            os.replace(tmp, self.best_path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def has_best(self) -> bool:
        return self.best_path.is_file()

    def load_best(self, model: nn.Module) -> None:
        load_weights(model, self.best_path)
