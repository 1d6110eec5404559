"""The columns of a Hugging Face dataset's splits as protege's arrays: the labels (class names from a
``ClassLabel``), the texts, or the numeric features. Each column is read whole through Arrow, with the
dataset's row order (a ``select`` or ``shuffle`` kept); a column that is missing, or of a type that does
not fit its role, is one line that names the columns there are."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from protege.errors import DataError, did_you_mean

Splits = dict[str, Any]
"""protege's split name (train, val, test) to a ``datasets.Dataset``."""
LABEL_TYPES = ("int", "uint", "string", "large_string", "bool", "float")
"""The ``Value`` types a label column may hold (a float label is a regression target)."""
NUMBER_TYPES = ("int", "uint", "bool", "float")


def check_columns(splits: Splits, names: list[str], path: Path) -> None:
    """Every column in ``names`` is in every split, else one line naming the columns the split has."""
    for split, dataset in splits.items():
        present = dataset.column_names
        for name in names:
            if name not in present:
                where = f"{path}" if len(splits) == 1 else f"{path} ({split} split)"
                raise DataError(
                    f"{where}: no column {name!r}{did_you_mean(name, present)}; columns: {', '.join(present)}"
                )


def type_name(feature: Any) -> str:
    """How a column's feature reads in an error: its Value type (``int64``, ``string``) or its kind (``Image``)."""
    dtype = getattr(feature, "dtype", None)
    return dtype if type(feature).__name__ == "Value" else type(feature).__name__


def _feature(splits: Splits, column: str) -> Any:
    """A column's feature (its type) in the first split: the train split, where protege's splits are."""
    return next(iter(splits.values())).features[column]


def _is_value(feature: Any, kinds: tuple[str, ...]) -> bool:
    return type(feature).__name__ == "Value" and feature.dtype.startswith(kinds)


def read_labels(splits: Splits, column: str, path: Path) -> tuple[dict[str, np.ndarray], list[str] | None]:
    """Each split's labels and, from a ``ClassLabel`` feature, the class names its integers index."""
    feature = _feature(splits, column)
    names = list(feature.names) if type(feature).__name__ == "ClassLabel" else None
    if names is None and not _is_value(feature, LABEL_TYPES):
        raise DataError(
            f"{path}: label column {column!r} holds {type_name(feature)}; a label is an integer, a ClassLabel, a "
            "string (or a number to regress); name another with label_column"
        )
    return {split: _values(dataset, column) for split, dataset in splits.items()}, names


def read_texts(splits: Splits, column: str, path: Path) -> dict[str, np.ndarray]:
    """Each split's texts (a missing one is an empty text, as in a CSV)."""
    feature = _feature(splits, column)
    if not _is_value(feature, ("string", "large_string")):
        raise DataError(f"{path}: text column {column!r} holds {type_name(feature)}, not strings")
    return {
        split: np.array(["" if text is None else text for text in _column(d, column).to_pylist()], dtype=object)
        for split, d in splits.items()
    }


def read_features(splits: Splits, columns: list[str], path: Path) -> dict[str, np.ndarray]:
    """Each split's numeric ``columns`` as float64, one row per example: the loader refuses a missing value
    (NaN here) or one past a 32-bit float's range, naming the row."""
    import pyarrow as pa

    for column in columns:
        feature = _feature(splits, column)
        if not _is_value(feature, NUMBER_TYPES):
            raise DataError(
                f"{path}: column {column!r} holds {type_name(feature)}, not numbers; name the numeric "
                "feature_columns, or a text_column or image_column"
            )
    out = {}
    for split, dataset in splits.items():
        table = dataset.select_columns(columns).with_format("arrow")[:]
        out[split] = np.stack([table.column(c).cast(pa.float64()).to_numpy() for c in columns], axis=1)
    return out


def _column(dataset: Any, column: str) -> Any:
    """One column as a pyarrow ChunkedArray, in the dataset's row order."""
    return dataset.select_columns([column]).with_format("arrow")[:].column(column)


def _values(dataset: Any, column: str) -> np.ndarray:
    """A column as an array: numbers or strings, or objects (``None`` where a value is missing)."""
    values = _column(dataset, column)
    if values.null_count:
        return np.array(values.to_pylist(), dtype=object)
    return np.asarray(values.to_numpy(zero_copy_only=False))
