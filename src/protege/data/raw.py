"""What a data source returns (:class:`RawData`), the registry of sources by name, and the one call
that runs a source with checked options and checks the shapes it hands back."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from protege.errors import DataError
from protege.options import MAX_INPUT_VALUES, signature_fields
from protege.registry import Registry


@dataclass
class RawData:
    """Arrays as a source gives them; ``x_test``/``x_val`` are set when the source defines splits."""

    x: np.ndarray
    y: np.ndarray
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    class_names: list[str] | None = None
    preprocess: dict | None = None
    text: dict | None = None
    """Set when ``x`` holds raw strings: ``{"column": ..., "max_features": ...}``; the loader encodes them."""
    groups: np.ndarray | None = None
    groups_test: np.ndarray | None = None
    """Group of each example of ``x`` / ``x_test`` (a csv ``group_column``), for per-group accuracy."""
    label_names: list[str] | None = None
    """The names of ``y``'s columns (several labels or targets), or of its one column (a regression target)."""
    label_delimiter: str | None = None
    """Set when each label is a list of labels in one string (``"news|sport"``), split at this."""
    images: Any = None
    """Set when ``x`` holds positions in an image folder's file list (``protege.data.streamed.ImageFolder``:
    streamed or cached images); the loader makes datasets that read the files batch by batch."""


FLOAT32_MAX = float(np.finfo(np.float32).max)

SOURCES: Registry[Callable[..., RawData]] = Registry(
    "data source", fields=lambda builder: signature_fields(builder, skip=("path",)), error=DataError
)


def call_source(spec: str, **options) -> RawData:
    """Build raw data from ``name`` or ``name:argument`` (``csv:data/train.csv``)."""
    name, _, argument = spec.partition(":")
    builder = SOURCES.get(name)
    options = SOURCES.check_options(name, options)
    if "path" in inspect.signature(builder).parameters:
        if not argument:
            raise DataError(f"data source {name!r} needs a path: write '{name}:path/to/file'")
        path = Path(argument).expanduser()
        if getattr(builder, "takes_file_or_directory", False):
            if not path.exists():
                raise DataError(f"data file or folder not found: {path}")
            raw = builder(path=path, **options)
        elif getattr(builder, "takes_directory", False):
            if not path.is_dir():
                raise DataError(f"data folder not found: {path}")
            return builder(path=path, **options)
        else:
            if not path.is_file():
                raise DataError(f"data file not found: {path}")
            if path.stat().st_size == 0:
                raise DataError(f"data file is empty: {path}")
            raw = builder(path=path, **options)
    elif argument:
        raise DataError(f"data source {name!r} takes no ':{argument}' argument")
    else:
        raw = builder(**options)
    check_shapes(raw, spec)
    return raw


def check_shapes(raw: RawData, source: str) -> None:
    """Refuse arrays a source handed over in shapes no model takes: inputs of one row per example, (N,
    values...) with 1 to 3 axes per example (texts: one string each), one label per example, and splits
    that pair inputs with labels and share the train split's shape."""
    if raw.images is not None:
        return  # positions in a file list; the images' shape comes from their headers (data/images.py)
    splits = {"": (raw.x, raw.y), "_val": (raw.x_val, raw.y_val), "_test": (raw.x_test, raw.y_test)}
    for suffix, (x, y) in splits.items():
        if (x is None) != (y is None):
            given, missing = (f"x{suffix}", f"y{suffix}") if y is None else (f"y{suffix}", f"x{suffix}")
            raise DataError(f"{source}: {given} is given without {missing}; give both or neither")
        if x is None or y is None:
            continue
        if raw.text is None and not 2 <= np.ndim(x) <= 4:
            raise DataError(
                f"{source}: x{suffix} has shape {np.shape(x)}; give one row per example: (N, features), "
                "(N, channels, length) or (N, channels, height, width)"
            )
        if raw.text is not None and np.ndim(x) != 1:
            raise DataError(f"{source}: x{suffix} has shape {np.shape(x)}; texts come one string per example")
        if np.ndim(y) not in (1, 2):
            raise DataError(
                f"{source}: y{suffix} has shape {np.shape(y)}; give one label per example, shape (N,), or one "
                "row of labels or targets per example, shape (N, outputs)"
            )
        if len(x) != len(y):
            raise DataError(f"{source}: x{suffix} has {len(x)} examples but y{suffix} has {len(y)} labels")
        if np.shape(x)[1:] != np.shape(raw.x)[1:]:
            raise DataError(f"{source}: x{suffix} has inputs of shape {np.shape(x)[1:]}, x {np.shape(raw.x)[1:]}")
    values = math.prod(np.shape(raw.x)[1:])
    if raw.text is None and not 1 <= values <= MAX_INPUT_VALUES:
        raise DataError(
            f"{source}: each input holds {values:,} values; a model takes 1 to {MAX_INPUT_VALUES:,} (resize or crop)"
        )
