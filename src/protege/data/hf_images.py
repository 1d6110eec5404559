"""Images in a Hugging Face dataset's ``Image`` column, decoded exactly as ``imagefolder:`` decodes files
(the same PNG gives the same tensor): every one up front (``load: memory``), or each batch in DataLoader
workers from the memory-mapped Arrow rows (``stream``), so memory does not grow with the dataset; ``auto``
chooses as it does for a folder. A row holds the file's bytes, or the path of a file on disk."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from protege.console import log
from protege.data.decode import EncodedImage, ImageFile
from protege.data.hf_columns import Splits, type_name
from protege.data.images import choose_load, decoded_splits, one_mode, one_size, position_splits, read_headers
from protege.data.raw import RawData
from protege.data.streamed import ImageFolder, default_workers
from protege.errors import DataError


class ImageColumn(Sequence):
    """The ``column`` of a dataset's splits, one after another, read a row at a time: each row's encoded
    file (its bytes, or the path it names), so no image is read or decoded before it is asked for."""

    def __init__(self, splits: Splits, column: str, path: Path) -> None:
        from datasets import Image, concatenate_datasets

        encoded = Image(decode=False)  # the file's bytes, decoded by protege as imagefolder decodes files
        parts = [dataset.select_columns([column]).cast_column(column, encoded) for dataset in splits.values()]
        self.table = parts[0] if len(parts) == 1 else concatenate_datasets(parts)
        self.column, self.path, self.splits = column, path, list(splits)
        self.starts = np.cumsum([0, *(len(part) for part in parts)])
        self.fingerprint = _fingerprint(parts)

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, row: int) -> ImageFile:  # type: ignore[override]  (one row, never a slice)
        if not 0 <= row < len(self):
            raise IndexError(row)
        cell = self.table[int(row)][self.column]
        if cell is not None and cell.get("bytes") is not None:
            return EncodedImage(cell["bytes"], self.name(row))
        if cell is None or cell.get("path") is None:
            raise DataError(f"{self.name(row)}: no image; give every row an image or drop the row")
        return Path(cell["path"])

    def name(self, row: int) -> str:
        """Where row ``row`` (counted over every split) is, for errors: its split, row and column."""
        part = int(np.searchsorted(self.starts, row, side="right")) - 1
        return f"{self.path} ({self.splits[part]} split, row {row - int(self.starts[part])}, column {self.column!r})"


def _fingerprint(parts: list) -> str:
    """The datasets' own fingerprints and their Arrow files' paths, sizes and modification times."""
    digest = hashlib.sha1()
    for part in parts:
        digest.update(str(part._fingerprint).encode())
        for cache in part.cache_files:
            stat = os.stat(cache["filename"])
            digest.update(f"{cache['filename']}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class DatasetImages(ImageFolder):
    """An image folder whose files are the rows of an :class:`ImageColumn`, told apart (teacher cache,
    resume) by the dataset's fingerprint and Arrow files rather than by one file per image."""

    files: ImageColumn  # type: ignore[assignment]

    def digest(self, positions: Sequence[int]) -> str:
        digest = hashlib.sha1(repr((self.files.fingerprint, self.files.column, self.size, self.mode)).encode())
        digest.update(np.asarray(positions, dtype=np.int64).tobytes())
        return digest.hexdigest()[:16]


def image_splits(
    splits: Splits,
    column: str,
    labels: dict[str, np.ndarray],
    path: Path,
    size: tuple[int, int] | None,
    mode: str | None,
    load: str,
    num_workers: int | None,
) -> RawData:
    """The images of ``column`` beside each split's ``labels``: decoded into memory, or as positions in
    the dataset's rows that the loader reads batch by batch; the log says which and why."""
    feature = splits["train"].features[column]
    if type(feature).__name__ != "Image":
        raise DataError(f"{path}: image column {column!r} holds {type_name(feature)}, not images (a datasets Image)")
    mode = mode or feature.mode  # an Image(mode=...) feature says the mode its images are read in
    every = ImageColumn(splits, column, path)
    chosen, why = choose_load(load, every, size, mode)
    if chosen == "memory":
        log(f"hf_dataset: {len(every):,} images decoded into memory ({why})")
        files = {split: ImageColumn({split: dataset}, column, path) for split, dataset in splits.items()}
        return decoded_splits(files, labels, size, mode or one_mode(read_headers(every)))
    headers = read_headers(every)  # every image's header before any training: a damaged one is named now
    workers = default_workers() if num_workers is None else num_workers
    images = DatasetImages(every, size or one_size(headers), mode or one_mode(headers), workers, root=path.resolve())
    log(f"hf_dataset: {len(every):,} images read from the dataset's rows by {workers or 'no'} worker processes ({why})")
    return position_splits(labels, images)
