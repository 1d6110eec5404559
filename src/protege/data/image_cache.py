"""The prepared cache of an image folder (``options.load: cache``): every image decoded once at the training
size and stored as uint8 in a .npy file that training memory-maps, reused while the folder is unchanged."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from protege.console import log, progress_bar
from protege.data.dataset import batch_loader
from protege.data.streamed import ImageFolder, StreamedImages, file_digest
from protege.errors import DataError
from protege.models.store import TEMPORARY_SUFFIX

CACHE_VERSION = 1
"""Part of every key: a change to how images are decoded or stored makes new caches."""
PREPARE_BATCH = 256


def cache_root(cache_dir: str | None, kind: str = "images") -> Path:
    """Where prepared data of a ``kind`` goes (``images``; ``datasets``, Hugging Face's Arrow copies of
    Parquet files): ``options.cache_dir``, else ``$PROTEGE_CACHE_DIR``, else ``$XDG_CACHE_HOME/protege``
    (``~/.cache/protege``), each with a folder per kind."""
    chosen = cache_dir or os.environ.get("PROTEGE_CACHE_DIR")
    if not chosen:
        chosen = str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "protege")
    return Path(chosen).expanduser() / kind


def prepared_cache(folder: ImageFolder, cache_dir: str | None) -> ImageFolder:
    """``folder`` reading from its prepared cache: the one on disk when its key (the files' paths, sizes and
    modification times, the size and the mode) matches, else one built now, and older caches of the same
    folder at the same size and mode removed."""
    root = cache_root(cache_dir)
    family = hashlib.sha1(repr((str(folder.root), folder.size, folder.mode)).encode()).hexdigest()[:12]
    path = root / f"{family}-{file_digest(folder.files, CACHE_VERSION, folder.size, folder.mode)}.npy"
    shape = (len(folder.files), *folder.shape)
    if _complete(path, shape):
        log(f"imagefolder: the prepared cache {path} matches the folder; reusing it")
        return dataclasses.replace(folder, cache=path)
    try:
        root.mkdir(parents=True, exist_ok=True)
        _build(folder, path, shape)
    except OSError as exc:
        raise DataError(
            f"cannot write the prepared image cache in {root} ({exc.strerror or exc}); "
            "set options.cache_dir or PROTEGE_CACHE_DIR to a folder with space"
        ) from None
    for stale in root.glob(f"{family}-*.npy"):
        if stale != path:
            stale.unlink(missing_ok=True)
    return dataclasses.replace(folder, cache=path)


def _complete(path: Path, shape: tuple[int, ...]) -> bool:
    """Whether ``path`` is a finished cache of ``shape`` (a rename makes it appear only when complete; a
    damaged or foreign file does not match and is built again)."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return False
    return array.dtype == np.uint8 and array.shape == shape


def _build(folder: ImageFolder, path: Path, shape: tuple[int, ...]) -> None:
    """Decode every image with the folder's workers into a uint8 memory map under a temporary name, then
    rename it into place: a run killed halfway leaves no cache that looks complete."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX)
    os.close(fd)
    temporary = Path(name)
    try:
        table = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.uint8, shape=shape)
        every = StreamedImages(folder, torch.arange(len(folder.files)), torch.zeros(len(folder.files)))
        log(f"imagefolder: preparing {len(folder.files):,} images at {folder.size[1]}×{folder.size[0]} in {path}")
        with progress_bar() as bar:
            task = bar.add_task("preparing images", total=len(folder.files), status="")
            for batch in batch_loader(every, PREPARE_BATCH):
                rows = batch["index"].numpy()
                table[rows] = np.rint(batch["x"].numpy() * 255.0).astype(np.uint8)
                bar.advance(task, len(rows))
        table.flush()
        del table
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)
