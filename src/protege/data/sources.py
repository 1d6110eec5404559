"""Data sources by name: ``digits``, ``mnist1d``, ``csv:path``, ``npz:path``.

A source returns :class:`RawData` (numpy arrays, labels of any type, splits it defines);
:func:`protege.data.build.load_data` turns it into a :class:`DataBundle`.
"""

from __future__ import annotations

import csv
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from protege.errors import DataError, did_you_mean
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
    groups: np.ndarray | None = None
    groups_test: np.ndarray | None = None
    """Group of each example of ``x`` / ``x_test`` (a csv ``group_column``), for per-group accuracy."""


SOURCES: Registry[Callable[..., RawData]] = Registry("data source")


def call_source(spec: str, **options) -> RawData:
    """Build raw data from ``name`` or ``name:argument`` (``csv:data/train.csv``)."""
    name, _, argument = spec.partition(":")
    builder = SOURCES.get(name)
    params = inspect.signature(builder).parameters
    unknown = [k for k in options if k not in params or k == "path"]
    if unknown:
        valid = [p for p in params if p != "path"]
        raise DataError(
            f"data source {name!r} has no option {unknown[0]!r}{did_you_mean(unknown[0], valid)}; "
            f"valid: {', '.join(valid) or 'none'}"
        )
    if "path" in params:
        if not argument:
            raise DataError(f"data source {name!r} needs a path: write '{name}:path/to/file'")
        path = Path(argument).expanduser()
        if not path.is_file():
            raise DataError(f"data file not found: {path}")
        if path.stat().st_size == 0:
            raise DataError(f"data file is empty: {path}")
        return builder(path=path, **options)
    if argument:
        raise DataError(f"data source {name!r} takes no ':{argument}' argument")
    return builder(**options)


@SOURCES.register("digits")
def digits() -> RawData:
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images), pixels scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None, :, :]
    return RawData(x=x, y=bunch.target, class_names=[str(c) for c in bunch.target_names])


@SOURCES.register("mnist1d")
def mnist1d(num_samples: int = 5000, seed: int = 42, train_split: float = 0.8) -> RawData:
    """MNIST-1D (Greydanus 2020), regenerated offline; the defaults give the standard 4000/1000 split.

    Another ``seed`` gives new samples from the same distribution: a transfer set.
    """
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.seed, args.train_split = num_samples, seed, train_split
    data = make_dataset(args)
    as_input = lambda a: a.astype(np.float32)[:, None, :]  # noqa: E731  (channels first)
    return RawData(
        x=as_input(data["x"]),
        y=data["y"],
        x_test=as_input(data["x_test"]),
        y_test=data["y_test"],
        class_names=[str(c) for c in range(10)],
    )


@SOURCES.register("npz")
def npz(path: Path) -> RawData:
    """A NumPy ``.npz`` with arrays ``x``, ``y`` and optionally ``x_val``/``y_val``, ``x_test``/``y_test``,
    ``class_names``."""
    try:
        with np.load(path, allow_pickle=False) as arrays:
            data = dict(arrays)
    except ValueError as exc:  # object arrays need pickle, which we refuse
        raise DataError(f"{path}: cannot read without unpickling ({exc}); save plain arrays") from None
    except Exception as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from None
    for key in ("x", "y"):
        if key not in data:
            raise DataError(f"{path}: no array {key!r}; found {', '.join(sorted(data)) or 'none'}")
    names = data.get("class_names")
    return RawData(
        x=data["x"],
        y=data["y"],
        x_val=data.get("x_val"),
        y_val=data.get("y_val"),
        x_test=data.get("x_test"),
        y_test=data.get("y_test"),
        class_names=[str(n) for n in names] if names is not None else None,
    )


@SOURCES.register("csv")
def csv_file(
    path: Path,
    label_column: str = "label",
    feature_columns: list[str] | None = None,
    text_column: str | None = None,
    split_column: str | None = None,
    group_column: str | None = None,
    max_features: int = 2000,
) -> RawData:
    """A CSV file with a header: numeric feature columns, or one text column (TF-IDF features), and a
    label column. A ``split_column`` with values train/val/test keeps the file's own split; a
    ``group_column`` (not a feature) names each row's group, and the report gives accuracy per group."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise DataError(f"{path}: no data rows under the header")
    columns = list(rows[0])
    for wanted in [label_column, text_column, split_column, group_column, *(feature_columns or [])]:
        if wanted is not None and wanted not in columns:
            raise DataError(
                f"{path}: no column {wanted!r}{did_you_mean(wanted, columns)}; columns: {', '.join(columns)}"
            )
    labels = np.array([row[label_column] for row in rows])
    splits = np.array([row[split_column].strip().lower() for row in rows]) if split_column else None
    groups = np.array([row[group_column].strip() for row in rows]) if group_column else None

    if text_column is not None:
        texts = [row[text_column] or "" for row in rows]
        train_mask = splits == "train" if splits is not None else np.ones(len(rows), bool)
        x, preprocess = _tfidf(texts, train_mask, max_features, path)
    else:
        skip = {label_column, split_column, group_column}
        names = feature_columns or [c for c in columns if c not in skip]
        if not names:
            raise DataError(f"{path}: no feature columns besides the label column {label_column!r}")
        x = np.empty((len(rows), len(names)), dtype=np.float32)
        for i, row in enumerate(rows, start=2):
            for j, name in enumerate(names):
                try:
                    value = float(row[name])
                except (TypeError, ValueError):
                    raise DataError(
                        f"{path}: line {i}, column {name!r}: {row[name]!r} is not a number; "
                        f"name the numeric columns with feature_columns or use text_column"
                    ) from None
                if not math.isfinite(value):
                    raise DataError(f"{path}: line {i}, column {name!r}: value is {value}; clean or drop that row")
                x[i - 2, j] = value
        preprocess = {"features": names}

    if splits is None:
        return RawData(x=x, y=labels, preprocess=preprocess, groups=groups)
    unknown = sorted(set(splits) - {"train", "val", "test"})
    if unknown:
        raise DataError(f"{path}: split column {split_column!r} has value {unknown[0]!r}; use train, val or test")
    part = lambda name: (x[splits == name], labels[splits == name]) if (splits == name).any() else (None, None)  # noqa: E731
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = part("train"), part("val"), part("test")
    if x_tr is None:
        raise DataError(f"{path}: split column {split_column!r} marks no row as 'train'")
    in_split = lambda name: groups[splits == name] if groups is not None else None  # noqa: E731
    return RawData(
        x=x_tr,
        y=y_tr,
        x_val=x_va,
        y_val=y_va,
        x_test=x_te,
        y_test=y_te,
        preprocess=preprocess,
        groups=in_split("train"),
        groups_test=in_split("test") if x_te is not None else None,
    )


def _tfidf(texts: list[str], fit_mask: np.ndarray, max_features: int, path: Path) -> tuple[np.ndarray, dict]:
    """TF-IDF features fitted on the training rows only; the vocabulary travels with the model."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(max_features=max_features)
    try:
        vectorizer.fit([t for t, keep in zip(texts, fit_mask, strict=True) if keep])
    except ValueError as exc:
        raise DataError(f"{path}: the text column gives no words to learn from ({exc})") from None
    x = vectorizer.transform(texts).toarray().astype(np.float32)
    vocabulary = {word: int(i) for word, i in vectorizer.vocabulary_.items()}
    return x, {"tfidf": {"vocabulary": vocabulary, "idf": vectorizer.idf_.tolist()}}
