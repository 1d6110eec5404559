"""A model on disk: ``model.safetensors`` plus ``model.json``, which says how to rebuild the module."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from protege.errors import CheckpointError, ModelError
from protege.files import read_text
from protege.models.cards import check_card

FORMAT = "protege-model"
VERSION = 1


@dataclass
class ModelCard:
    """Everything needed to rebuild a model and feed it: architecture, options, classes, preprocessing."""

    architecture: str
    options: dict
    input_shape: list[int]
    class_names: list[str]
    preprocess: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    """The data it was trained on and how it was split (``DataBundle.split``), so the models it meets later
    can be checked against it: a test split that holds its training examples is refused."""
    tasks: list = field(default_factory=list)
    """A multi-head model's tasks in the order of its outputs (name, type, output names; protege.multitask):
    its ``class_names`` are then ``task:name`` per output. Empty for a model of one task."""

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


TEMPORARY_SUFFIX = ".tmp"
"""Every file or folder protege writes under a temporary name is ``.<name>.<random>.tmp``, so a resumed
run finds and removes what a killed one left (protege.rundir.remove_temporary)."""


def is_temporary(path: Path) -> bool:
    """Whether ``path`` has the name of one of protege's temporary files or folders."""
    return path.name.startswith(".") and path.name.endswith(TEMPORARY_SUFFIX)


def staging_dir(parent: Path, name: str) -> Path:
    """A fresh temporary folder in ``parent``, to be renamed to ``name`` once complete."""
    return Path(tempfile.mkdtemp(dir=parent, prefix=f".{name}.", suffix=TEMPORARY_SUFFIX))


def atomic_write_text(path: Path, text: str) -> None:
    """Write a text file under a temporary name, then rename it: a crash leaves the old file or none."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file under a temporary name, then rename it, with the permissions a plain ``open()``
    would give it (``mkstemp`` makes it owner-only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def state_for_saving(model: nn.Module) -> dict[str, torch.Tensor]:
    """A contiguous, unshared copy of the state dict (safetensors refuses shared storage)."""
    return {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}


def save_model(model: nn.Module, card: ModelCard, directory: Path) -> Path:
    """Write ``directory`` (model.safetensors + model.json) atomically: build it aside, then rename."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = staging_dir(directory.parent, directory.name)
    try:
        save_file(state_for_saving(model), str(staging / "model.safetensors"))
        (staging / "model.json").write_text(card_to_json(card), encoding="utf-8")
        # models that need more than weights to rebuild (a Hugging Face config and tokenizer) add their files
        save_assets = getattr(model, "save_assets", None)
        if callable(save_assets):
            save_assets(staging)
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old{TEMPORARY_SUFFIX}")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(directory, old)
            os.replace(staging, directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


def read_card(directory: Path) -> ModelCard:
    """Read and check ``model.json``; a missing, foreign or newer file gets a one-line error."""
    meta_path = Path(directory) / "model.json"
    if not meta_path.is_file():
        raise CheckpointError(f"no model.json in {directory}: not a protege model directory")
    return card_from_json(read_text(meta_path, CheckpointError), str(meta_path))


def card_to_json(card: ModelCard) -> str:
    """The card as the JSON document ``model.json`` holds (also embedded in exported files)."""
    return json.dumps({"format": FORMAT, "version": VERSION, **asdict(card)}, indent=2)


def card_from_json(text: str, origin: str) -> ModelCard:
    """Parse and check a card written by :func:`card_to_json`; ``origin`` names the file in errors."""
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{origin} is not valid JSON ({exc.msg})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{origin} is not a protege model description")
    version = meta.get("version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise CheckpointError(f"{origin}: version must be a whole number (got {version!r}); the card was damaged")
    if version > VERSION:
        raise CheckpointError(f"{origin} was written by a newer protege (format {meta['version']}); upgrade protege")
    check_card(meta, origin)
    fields = ModelCard.__dataclass_fields__
    return ModelCard(**{k: v for k, v in meta.items() if k in fields})


def load_weights(model: nn.Module, path: Path) -> None:
    """Load safetensors weights into ``model``; mismatched names or shapes are a one-line error."""
    try:
        state = load_file(str(path))
    except Exception as exc:
        raise CheckpointError(f"cannot read weights {path}: {exc}") from None
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if "\n" in str(exc) else str(exc)
        raise CheckpointError(f"weights {path} do not fit the model: {first}") from None


def resolve_run_path(source: str) -> Path:
    """The model directory behind ``run:path``: a model dir, a stage dir, or a run dir (its final model)."""
    path = Path(source.partition(":")[2]).expanduser()
    for candidate in (path, path / "model", path / "student" / "model", path / "teacher" / "model"):
        if (candidate / "model.json").is_file():
            return candidate
    raise ModelError(f"{source}: no saved model there (looked for model.json in {path} and its stage folders)")
