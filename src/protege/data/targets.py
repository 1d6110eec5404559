"""Raw targets to the tensors a task type trains on (protege.tasks): class ids (data/labels.py), real
values per target for regression, 0/1 per label for multi-label classification. Whatever does not fit
the task is one line that names the row and column."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from protege.data.labels import class_index, is_missing
from protege.errors import DataError

Encoder = Callable[[np.ndarray, str], np.ndarray]
"""Maps a split's raw targets (and the split's name, for errors) to the task's target array."""

TRUE = {"1", "1.0", "true", "yes", "y", "t"}
FALSE = {"0", "0.0", "false", "no", "n", "f", ""}
"""How a multi-label column may say that an example has (or lacks) the label."""


def target_index(
    task: str,
    y: np.ndarray,
    names: list[str] | None,
    source: str,
    column_names: Sequence[str] | None = None,
    delimiter: str | None = None,
) -> tuple[list[str], Encoder]:
    """The output names (classes, targets or labels) and an encoder of raw targets for ``task``.

    ``column_names`` name the columns of a 2-D ``y`` (several label or target columns); ``delimiter``
    splits one column of label lists (``"news|sport"``) for a multi-label task."""
    if task == "classification":
        if y.ndim != 1:
            raise DataError(
                f"{source}: {y.shape[1]} label columns for a classification task; a multi-label task reads them "
                "(data.task: multilabel), a classification task one label per example"
            )
        return class_index(y, names, source)
    if task == "regression":
        return _regression(y, list(column_names or names or []), source)
    if task == "multilabel":
        return _multilabel(y, list(column_names or names or []), delimiter, source)
    raise DataError(f"{source}: unknown task {task!r}")


def _regression(y: np.ndarray, names: list[str], source: str) -> tuple[list[str], Encoder]:
    width = 1 if y.ndim == 1 else y.shape[1]
    names = names if len(names) == width else ([f"target_{i}" for i in range(width)] if width > 1 else ["target"])

    def encode(values: np.ndarray, split: str) -> np.ndarray:
        table = values.reshape(len(values), -1)
        out = np.empty(table.shape, dtype=np.float32)
        for (row, column), value in np.ndenumerate(table):
            out[row, column] = _real(value, source, split, row, names[column])
        return out

    return names, encode


def _real(value: object, source: str, split: str, row: int, column: str) -> float:
    if is_missing(value):
        raise DataError(f"{source} ({split} split): example {row + 1} has no value for target {column!r}")
    try:
        number = float(str(value).strip()) if not isinstance(value, (int, float, np.number)) else float(value)
    except ValueError:
        raise DataError(
            f"{source} ({split} split): example {row + 1}, target {column!r}: {value!r} is not a number; "
            "a regression target must be numeric (for classes use data.task: classification)"
        ) from None
    if not math.isfinite(number) or abs(number) > np.finfo(np.float32).max:
        raise DataError(
            f"{source} ({split} split): example {row + 1}, target {column!r} is {value!r}; give a finite number"
        )
    return number


def _multilabel(y: np.ndarray, names: list[str], delimiter: str | None, source: str) -> tuple[list[str], Encoder]:
    if y.ndim == 2:
        if len(names) != y.shape[1]:
            names = [f"label_{i}" for i in range(y.shape[1])]
        return _checked(names, source), _indicator_encoder(names, source)
    if delimiter is None:
        raise DataError(
            f"{source}: a multi-label task needs several 0/1 label columns (options.label_columns) or one column "
            "of label lists and the character between them (options.label_delimiter, e.g. '|')"
        )
    found = sorted({label for value in y for label in _split_labels(value, delimiter)})
    return _checked(found, source), _list_encoder(found, delimiter, source)


def _checked(names: list[str], source: str) -> list[str]:
    if not names:
        raise DataError(f"{source}: no labels at all; a multi-label task needs at least one label")
    return names


def _split_labels(value: object, delimiter: str) -> list[str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    return [part.strip() for part in str(value).split(delimiter) if part.strip()]


def _indicator_encoder(names: list[str], source: str) -> Encoder:
    def encode(values: np.ndarray, split: str) -> np.ndarray:
        if values.ndim != 2 or values.shape[1] != len(names):
            raise DataError(f"{source} ({split} split): {values.shape[1:]} label columns, training has {len(names)}")
        out = np.empty(values.shape, dtype=np.float32)
        for (row, column), value in np.ndenumerate(values):
            text = str(value).strip().lower()
            if isinstance(value, (bool, np.bool_, int, float, np.number)) and float(value) in (0.0, 1.0):
                out[row, column] = float(value)
            elif text in TRUE or text in FALSE:
                out[row, column] = 1.0 if text in TRUE else 0.0
            else:
                raise DataError(
                    f"{source} ({split} split): example {row + 1}, label column {names[column]!r} holds {value!r}; "
                    "a multi-label column holds 0 or 1 (for one label per example use data.task: classification)"
                )
        return out

    return encode


def _list_encoder(names: list[str], delimiter: str, source: str) -> Encoder:
    index = {name: i for i, name in enumerate(names)}

    def encode(values: np.ndarray, split: str) -> np.ndarray:
        out = np.zeros((len(values), len(names)), dtype=np.float32)
        for row, value in enumerate(values):
            for label in _split_labels(value, delimiter):
                if label not in index:
                    shown = ", ".join(names[:10])
                    raise DataError(
                        f"{source} ({split} split): label {label!r} is not among the training labels ({shown})"
                    )
                out[row, index[label]] = 1.0
        return out

    return encode
