"""Image folders read from their files batch by batch (``options.load: stream``) or from a prepared uint8
cache (``cache``), in DataLoader worker processes, so memory does not grow with the number of files."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from protege.data.dataset import UNLABELED
from protege.data.decode import load_image
from protege.errors import DataError
from protege.models.image_inputs import ModelInput

AUTO_MEMORY_BYTES = 1024**3
"""``load: auto`` keeps a folder in memory while its decoded float32 pixels take at most this (1 GiB)."""


def default_workers() -> int:
    """DataLoader worker processes when ``options.num_workers`` is not set: one per core, at most 4."""
    return min(4, os.cpu_count() or 1)


class UnreadableImage(DataError):
    """A file that failed to decode in a DataLoader worker. torch re-raises a worker's exception in the main
    process as ``type("Caught ... Original Traceback ...")``; the constructor keeps the original one line."""

    def __init__(self, message: str) -> None:
        if message.startswith("Caught ") and "Traceback" in message:
            message = message.rstrip().splitlines()[-1].partition(": ")[2] or message
        super().__init__(message)


@dataclass(frozen=True)
class ImageFolder:
    """The files of one image folder (every split) and how they are read: decoded at ``size`` (height,
    width) in colour ``mode``, by ``num_workers`` processes, from ``cache`` (a uint8 .npy) when set."""

    files: tuple[Path, ...]
    size: tuple[int, int]
    mode: str
    num_workers: int
    root: Path
    """The folder the recipe names (its prepared caches are told apart by it)."""
    cache: Path | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        from PIL import Image

        return (Image.getmodebands(self.mode), *self.size)

    @property
    def load(self) -> str:
        return "cache" if self.cache is not None else "stream"

    def digest(self, positions: Sequence[int]) -> str:
        """A hash of the files at ``positions`` (paths, sizes, modification times), the size and the mode."""
        return file_digest([self.files[p] for p in positions], self.size, self.mode)


def file_digest(files: Sequence[Path], *extra: object) -> str:
    """A hash of each file's path, size and modification time (not its pixels) and ``extra`` values: a
    renamed, rewritten or touched file changes it, reading it costs one ``stat`` per file."""
    digest = hashlib.sha1(repr(extra).encode())
    for file in files:
        stat = file.stat()
        digest.update(f"{file.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


class StreamedImages(Dataset):
    """Some of a folder's images (``positions`` in its file list) with their targets; ``__getitems__``
    decodes a batch (or reads it from the cache), so only the batches in flight are in memory.

    It gives what protege reads from a dataset: ``len``, batches with ``x``, ``y``, ``labeled`` and
    ``index``, ``input_shape``, ``fingerprint`` (from the files, not the pixels) and ``num_workers`` for
    the loader. A per-sample transform (augmentation) belongs in :meth:`_decode`, which runs in the workers.
    """

    fixed_inputs = True
    """An example's input is the same every epoch, so a frozen teacher's outputs can be cached."""

    def __init__(
        self, folder: ImageFolder, positions: torch.Tensor, y: torch.Tensor, view: ModelInput | None = None
    ) -> None:
        if len(positions) != len(y):
            raise ValueError(f"{len(positions)} images but {len(y)} targets")
        self.folder = folder
        self.view = view
        """The model's input images (protege.models.image_inputs): each batch is resized to them as it is read."""
        self.positions = torch.as_tensor(positions, dtype=torch.long)
        self.y = y if y.is_floating_point() else y.long()
        self.labeled = torch.ones(len(y), dtype=torch.bool) if y.is_floating_point() else self.y != UNLABELED
        self._cache: np.ndarray | None = None  # opened in each process on first use

    def __len__(self) -> int:
        return len(self.y)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.folder.shape if self.view is None else (self.folder.shape[0], *self.view.size)

    @property
    def num_workers(self) -> int:
        """Worker processes for the loader: none from a prepared cache, where reading a batch from the memory
        map costs less than passing it from another process."""
        return 0 if self.folder.cache is not None else self.folder.num_workers

    def subset(self, idx: torch.Tensor) -> StreamedImages:
        """The examples at ``idx`` (the same files, fewer of them)."""
        return StreamedImages(self.folder, self.positions[idx], self.y[idx], self.view)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        batch = self.__getitems__([i])
        return {key: value[0] for key, value in batch.items()}

    def __getitems__(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        rows = self.positions.index_select(0, idx).numpy()
        x = self._from_cache(rows) if self.folder.cache is not None else np.stack([self._decode(r) for r in rows])
        pixels = torch.from_numpy(x)
        return {
            "x": pixels if self.view is None else self.view.resize_images(pixels),
            "y": self.y.index_select(0, idx),
            "labeled": self.labeled.index_select(0, idx),
            "index": idx,
        }

    def _decode(self, row: int) -> np.ndarray:
        try:
            return load_image(self.folder.files[row], self.folder.size, self.folder.mode)
        except DataError as exc:
            raise UnreadableImage(str(exc)) from None

    def _from_cache(self, rows: np.ndarray) -> np.ndarray:
        if self._cache is None:
            self._cache = np.load(self.folder.cache, mmap_mode="r", allow_pickle=False)
        order = np.argsort(rows)  # reading the memory map in file order is kinder to the disk
        out = np.empty((len(rows), *self.folder.shape), dtype=np.float32)
        out[order] = self._cache[rows[order]]
        return out / np.float32(255.0)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_cache": None}  # a worker opens its own map instead of copying the array

    def fingerprint(self) -> str:
        """A short hash of the files (paths, sizes, modification times), their order, size and mode, and the
        targets: it tells one data set from another (teacher cache, resume) without reading any pixel."""
        files = self.folder.digest(self.positions.tolist())
        view = f"\0{self.view.key()}" if self.view is not None else ""  # another resize is other data
        digest = hashlib.sha1((files + view).encode())
        digest.update(str(tuple(self.y.shape)).encode())
        digest.update(self.y.contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]


def refuse_streamed(dataset: object, feature: str) -> None:
    """A one-line error for a ``feature`` that needs every input in memory (it slices, shifts or joins the
    inputs themselves), given images that are streamed from files or from a prepared cache."""
    if isinstance(dataset, StreamedImages):
        raise DataError(
            f"{feature} needs the images in memory, and data.options.load is {dataset.folder.load}; "
            "set data.options.load: memory"
        )
