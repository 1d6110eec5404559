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
from typing import Annotated

import torch
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
)
from safetensors.torch import save_file
from torch import nn

from protege.errors import CheckpointError
from protege.files import read_text
from protege.models.store import TEMPORARY_SUFFIX, atomic_write_text, load_weights, staging_dir, state_for_saving
from protege.options import describe

CHECKPOINT_VERSION = 1
"""Bumped when the training state a checkpoint holds changes meaning; resume refuses other versions."""


Count = Annotated[StrictInt, Field(ge=0)]


@dataclass
class TrainState:
    """Where training stands: enough to continue exactly as an uninterrupted run would. The types are
    checked when a checkpoint's state.json is read back (``read_state``)."""

    epoch: Count = 0
    batches_done: Count = 0
    global_step: Count = 0
    history: list[dict] = field(default_factory=list)
    best_value: StrictFloat | None = None
    best_epoch: Annotated[StrictInt, Field(ge=1)] | None = None
    bad_epochs: Count = 0
    stopped_early: StrictBool = False
    fingerprint: StrictStr | None = None
    sums: dict = field(default_factory=dict)
    skipped_steps: Count = 0
    best_weights: dict | None = None
    hooks: dict = field(default_factory=dict)
    """Each hook's checkpointed state, by hook name (protege.hooks)."""

    def to_json(self) -> dict:
        skip = {"sums", "best_weights", "hooks"}
        return {k: v for k, v in self.__dict__.items() if k not in skip}


class _Epoch(BaseModel):
    """An epoch of a checkpoint's history, as far as resuming reads it."""

    model_config = ConfigDict(strict=True, extra="allow")
    epoch: PositiveInt
    train_loss: float
    val_accuracy: float | None = None


_STATE = TypeAdapter(TrainState)
SUM_KEYS = ("examples", "loss")
"""The running sums a checkpoint taken mid-epoch always holds (protege.running; the training metric's
sums are named by the metric, and RunningSums.from_dict checks them)."""


def read_state(meta: dict, extras: object, path: Path) -> TrainState:
    """The training state of a checkpoint, checked before anything is restored: a state.json whose fields
    have other types or disagree (a history shorter than its epochs), or a trainer.pt without its parts,
    is a one-line CheckpointError."""
    fields = set(TrainState.__dataclass_fields__) - {"sums", "best_weights"}
    saved = {k: v for k, v in meta.items() if k in fields}
    try:
        state = _STATE.validate_python(saved)
        for record in state.history:
            _Epoch.model_validate(record)
    except ValidationError as exc:
        raise CheckpointError(f"checkpoint {path}: state.json: {describe(exc)}; delete it to start over") from None
    problem = _state_problem(state) or _extras_problem(extras)
    if problem is not None:
        raise CheckpointError(f"checkpoint {path}: {problem}; delete it to start over")
    return state


def _state_problem(state: TrainState) -> str | None:
    if [record["epoch"] for record in state.history] != list(range(1, state.epoch + 1)):
        return f"state.json: {len(state.history)} epochs of history for epoch {state.epoch}"
    best = state.best_epoch
    if best is not None and (best > state.epoch or "val_loss" not in state.history[best - 1]):
        return f"state.json: best_epoch {best} is not a validated epoch"
    return None


def _extras_problem(extras: object) -> str | None:
    if not isinstance(extras, dict) or not {"optimizer", "scheduler", "rng_cpu", "rng_cuda", "sums"} <= set(extras):
        return "trainer.pt lacks the optimizer, scheduler, random or running-sum state"
    sums = extras["sums"]
    if not isinstance(sums, dict) or not all(isinstance(v, torch.Tensor) and v.numel() == 1 for v in sums.values()):
        return "trainer.pt: the running sums are not scalars"
    if sums and not set(SUM_KEYS) <= set(sums):
        return f"trainer.pt: the running sums lack {', '.join(sorted(set(SUM_KEYS) - set(sums)))}"
    return None


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
        name = read_text(pointer, CheckpointError).strip()
        if not name.startswith("step-") or Path(name).name != name:
            raise CheckpointError(f"{pointer} does not name a checkpoint of this folder; delete it to start over")
        path = self.directory / name
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
        version = meta.get("checkpoint_version", 0) if isinstance(meta, dict) else None
        if version != CHECKPOINT_VERSION:
            raise CheckpointError(
                f"checkpoint {path} has format {version}, this protege reads format "
                f"{CHECKPOINT_VERSION}; resume with the protege version that wrote it, or start a new run directory"
            )
        state = read_state(meta, extras, path)
        load_weights(model, path / "model.safetensors")
        if (path / "objective.safetensors").is_file():
            load_weights(objective, path / "objective.safetensors")
        device = next(model.parameters()).device
        try:
            optimizer.load_state_dict(extras["optimizer"])
            scheduler.load_state_dict(extras["scheduler"])
            torch.set_rng_state(extras["rng_cpu"])
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(
                f"checkpoint {path} does not fit this training ({first}); delete it to start over"
            ) from None
        if extras["rng_cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(extras["rng_cuda"])
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
