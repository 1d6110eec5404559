"""Turn a data source into train/validation/test tensors with a class list."""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from protege.console import log
from protege.data.dataset import UNLABELED, ArrayDataset, DataBundle
from protege.data.raw import FLOAT32_MAX, RawData, call_source
from protege.data.sources import read_csv_rows
from protege.data.streamed import StreamedImages
from protege.data.targets import target_index
from protege.data.text import TextEncoder, TfidfEncoder, encode_splits
from protege.data.unlabeled import TEXT_FILE, unlabeled_texts
from protege.errors import DataError
from protege.models.image_inputs import ModelInput

TargetIndex = Callable[..., tuple[list[str], Callable[[np.ndarray, str], np.ndarray]]]
"""(raw targets, class names, source, column names, delimiter) -> output names and the targets' encoder."""


@dataclass
class Splits:
    """The three splits as arrays (val may be absent), the test examples' groups, and how they were made."""

    x: np.ndarray
    y: np.ndarray
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray
    test_groups: np.ndarray | None
    test_given: bool
    val_given: bool
    train_groups: np.ndarray | None = None
    val_groups: np.ndarray | None = None
    rows: dict = field(default_factory=dict)
    """Each split's examples as rows of the source (ids that survive the seeded split)."""


@dataclass
class SplitExamples:
    """A source's examples split once, before any encoding: what every model's view of the data shares
    (the same texts, in the same order, in the same splits), plus how they were split."""

    raw: RawData
    splits: Splits
    class_names: list[str]
    source: str
    options: dict | None
    seed: int
    test_fraction: float
    val_fraction: float
    standardize: bool
    task: str


def load_data(
    source: str,
    options: dict | None = None,
    *,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    standardize: bool = False,
    seed: int = 0,
    text_encoder: TextEncoder | None = None,
    task: str = "classification",
    targets: TargetIndex | None = None,
) -> DataBundle:
    """Load ``source`` and split it; a split the source defines is kept, others are drawn with ``seed``
    (stratified by class for classification). Targets become the ``task``'s (protege.tasks): class ids,
    0/1 per label, or real values. Texts are encoded after the split, fitted on train: TF-IDF, or
    ``text_encoder`` (a Hugging Face model's tokenizer). ``targets`` replaces the task's reading of the
    raw targets (several tasks side by side: protege.multitask.data)."""
    examples = split_examples(
        source, options, val_fraction=val_fraction, test_fraction=test_fraction, standardize=standardize,
        seed=seed, task=task, targets=targets,
    )  # fmt: skip
    return encode_examples(examples, text_encoder)


def split_examples(
    source: str,
    options: dict | None = None,
    *,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    standardize: bool = False,
    seed: int = 0,
    task: str = "classification",
    targets: TargetIndex | None = None,
) -> SplitExamples:
    """Load ``source`` and split its raw examples (see :func:`load_data`), encoding nothing yet."""
    raw = call_source(source, **(options or {}))
    _check_features(raw, source)
    index = targets or functools.partial(target_index, task)
    class_names, encode = index(raw.y, raw.class_names, source, raw.label_names, raw.label_delimiter)
    splits = _splits(raw, encode, source, test_fraction, val_fraction, seed)
    fractions = (test_fraction, val_fraction)
    return SplitExamples(raw, splits, class_names, source, options, seed, *fractions, standardize, task)


def encode_examples(examples: SplitExamples, text_encoder: TextEncoder | None = None) -> DataBundle:
    """The split examples as tensors: texts through ``text_encoder`` (TF-IDF when None), fitted on the
    training texts; numbers standardised when asked. ``examples`` is left as it was, so another model
    can encode the same examples its own way."""
    raw, source, task = examples.raw, examples.source, examples.task
    image_view = text_encoder if isinstance(text_encoder, ModelInput) else None
    text_encoder = None if image_view is not None else text_encoder
    if text_encoder is not None and raw.text is None:
        reader = getattr(text_encoder, "reader", None) or "a Hugging Face model"
        raise DataError(
            f"{source} gives numeric inputs, but {reader} reads text: use a text source "
            f"(csv:/jsonl: with text_column, bbc_news)"
        )
    splits = dataclasses.replace(examples.splits)
    preprocess = dict(raw.preprocess or {})
    if image_view is not None:
        image_view = _resized(splits, raw, image_view, source)
        preprocess["model_input"] = image_view.to_card()
    if raw.text is not None:
        text_encoder = text_encoder or TfidfEncoder(raw.text["max_features"])
        splits.x, (splits.x_val, splits.x_test) = encode_splits(text_encoder, splits.x, [splits.x_val, splits.x_test])
        preprocess.update(text_encoder.describe())
        preprocess["text_column"] = raw.text["column"]
        if "tfidf" in preprocess:
            preprocess["tfidf"]["column"] = raw.text["column"]
    tokens = raw.text is not None and splits.x.dtype.kind in "iu"  # integers are token ids only from a tokenizer
    if examples.standardize:
        if tokens:
            raise DataError(f"{source}: standardize applies to numeric features, not token ids; set it to false")
        if raw.images is not None:
            raise DataError(
                f"{source}: standardize needs every image in memory (images are already in [0, 1]); set "
                "standardize: false, or data.options.load: memory"
            )
        preprocess["standardize"] = _standardize(splits)
    dataset = _dataset_maker(raw, tokens, image_view)

    how = (examples.seed, splits, examples.test_fraction, examples.val_fraction, examples.standardize, task)
    return DataBundle(
        task=task,
        split=_provenance(source, examples.options, *how),
        train=dataset(splits.x, splits.y),
        test=dataset(splits.x_test, splits.y_test),
        val=dataset(splits.x_val, splits.y_val) if splits.x_val is not None else None,
        class_names=list(examples.class_names),
        source=source,
        preprocess=preprocess,
        text_encoder=text_encoder if raw.text is not None else None,
        texts=examples.splits.x if raw.text is not None else None,
        test_texts=examples.splits.x_test if raw.text is not None else None,
        test_groups=[str(g) for g in splits.test_groups] if splits.test_groups is not None else None,
        groups=_group_names(splits),
        rows={split: torch.as_tensor(r) for split, r in splits.rows.items() if r is not None},
    )


def _dataset_maker(
    raw: RawData, tokens: bool, view: ModelInput | None = None
) -> Callable[[np.ndarray, np.ndarray], Dataset]:
    """How a split's inputs and targets become a dataset: tensors in memory, or, for an image folder read
    batch by batch, its file positions (``StreamedImages``, resized to the model's ``view`` as they are read)."""
    if raw.images is not None:
        return lambda a, b: StreamedImages(raw.images, torch.as_tensor(a), torch.as_tensor(b), view)
    dtype = np.int64 if tokens else np.float32
    return lambda a, b: ArrayDataset(torch.as_tensor(np.ascontiguousarray(a, dtype=dtype)), torch.as_tensor(b))


def _resized(splits: Splits, raw: RawData, view: ModelInput, source: str) -> ModelInput:
    """Every split resized to the model's view (in place, for images in memory; a streamed folder is resized
    as it is read), with the view's mean/std fitted to the images' channels; logged once per view."""
    shape = raw.images.shape if raw.images is not None else splits.x.shape[1:]
    if raw.text is not None or len(shape) != 3:
        what = "texts" if raw.text is not None else f"inputs of shape {tuple(shape)}"
        raise DataError(
            f"{view.origin} asks for {view.size[0]}×{view.size[1]} images; {source} gives {what}: set "
            "model.options.preprocess: none, or use image data"
        )
    view = view.for_channels(shape[0], view.origin)
    if raw.images is None:
        splits.x = view.resize_array(splits.x)
        splits.x_test = view.resize_array(splits.x_test)
        splits.x_val = view.resize_array(splits.x_val) if splits.x_val is not None else None
    log(f"preprocessing from {view.origin}: {view.describe()}")
    return view


def _group_names(splits: Splits) -> dict[str, list[str]]:
    """Each split's group names, for the splits that have them (a csv ``group_column``)."""
    named = {"train": splits.train_groups, "val": splits.val_groups, "test": splits.test_groups}
    return {split: [str(g) for g in groups] for split, groups in named.items() if groups is not None}


def _splits(raw: RawData, encode, source: str, test_fraction: float, val_fraction: float, seed: int) -> Splits:
    """The source's own splits where it gives them; the others drawn with ``seed`` (test) and ``seed + 1``
    (validation, from what the test split left). Each example's row in the source (its id) and its group
    travel with it; carrying them does not change the permutation."""
    x, y = raw.x, encode(raw.y, "train")
    rows, groups = np.arange(len(x)), raw.groups
    test_given = raw.x_test is not None and raw.y_test is not None
    val_given = raw.x_val is not None and raw.y_val is not None
    test_groups = raw.groups_test
    if test_given:
        x_test, y_test = raw.x_test, encode(raw.y_test, "test")
        test_rows = np.arange(len(x_test))
    else:
        parts = _split(x, y, test_fraction, seed, source, rows, *([groups] if groups is not None else []))
        x, x_test, y, y_test, rows, test_rows = parts[:6]
        groups, test_groups = parts[6:8] if groups is not None else (None, None)
    val_groups = val_rows = None
    if val_given:
        x_val, y_val = raw.x_val, encode(raw.y_val, "val")
        val_rows = np.arange(len(x_val))
    elif val_fraction > 0:
        parts = _split(x, y, val_fraction, seed + 1, source, rows, *([groups] if groups is not None else []))
        x, x_val, y, y_val, rows, val_rows = parts[:6]
        groups, val_groups = parts[6:8] if groups is not None else (None, None)
    else:
        x_val = y_val = None
    splits = Splits(x, y, x_val, y_val, x_test, y_test, test_groups, test_given, val_given, groups, val_groups)
    splits.rows = {"train": rows, "val": val_rows, "test": test_rows}
    return splits


def _standardize(splits: Splits) -> dict:
    """Every split scaled with the training split's mean and scale (in place); returns them."""
    mean, std = splits.x.mean(axis=0), feature_scale(splits.x)
    splits.x, splits.x_test = (splits.x - mean) / std, (splits.x_test - mean) / std
    if splits.x_val is not None:
        splits.x_val = (splits.x_val - mean) / std
    return {"mean": mean.tolist(), "std": std.tolist()}


def _provenance(source, options, seed, splits: Splits, test_fraction, val_fraction, standardize, task) -> dict:
    """Where the examples came from and how they were split (``DataBundle.split``, saved in model cards)."""
    return {
        "source": source,
        "location": source_location(source),
        "options": json.loads(json.dumps(options or {}, default=str)),
        "seed": seed,
        "test": "source" if splits.test_given else "drawn",
        "test_fraction": None if splits.test_given else test_fraction,
        "val": "source" if splits.val_given else "drawn" if val_fraction > 0 else "none",
        "val_fraction": None if splits.val_given else val_fraction,
        "standardize": standardize,
        "task": task,
    }


def source_location(source: str) -> str | None:
    """The absolute path behind ``kind:path`` (the same file named from another folder is the same data)."""
    _, _, argument = source.partition(":")
    return str(Path(argument).expanduser().resolve()) if argument else None


def feature_scale(x: np.ndarray) -> np.ndarray:
    """Each feature's standard deviation over the training inputs, 1 for a feature that never varies
    there (as scikit-learn's StandardScaler): dividing by a tiny scale would blow up any test value."""
    std = x.std(axis=0)
    return np.where(std < 10 * np.finfo(std.dtype).eps, 1.0, std).astype(std.dtype)


def load_unlabeled(
    source: str,
    options: dict | None = None,
    limit: int | None = None,
    text_encoder: TextEncoder | None = None,
    preprocess: dict | None = None,
) -> ArrayDataset:
    """Inputs only, from every split of ``source``, for the teacher to label (a transfer set).

    They go through the labelled data's encoding: texts (protege.data.unlabeled) through its fitted
    ``text_encoder`` (one vocabulary for both sets), a CSV through its feature columns (no label column
    needed), and numbers through its standardisation, all from ``preprocess``.
    """
    preprocess = preprocess or {}
    if text_encoder is not None:
        texts = unlabeled_texts(source, options or {}, limit, preprocess.get("text_column"))
        return ArrayDataset.unlabeled(torch.as_tensor(text_encoder.transform(texts)))
    kind, _, argument = source.partition(":")
    if kind == TEXT_FILE:
        raise DataError(f"transfer set {source} holds texts but the labelled data does not; use numeric inputs")
    if kind == "csv" and "features" in preprocess:
        x = _csv_features(Path(argument).expanduser(), preprocess["features"])
    else:
        raw = call_source(source, **(options or {}))
        if raw.images is not None:
            raise DataError(
                f"transfer set {source}: a transfer set is held in memory, and its images would be read from "
                f"{raw.images.load}; set transfer.options.load: memory"
            )
        if raw.text is not None:
            raise DataError(f"transfer set {source} holds texts but the labelled data does not; use numeric inputs")
        x = np.concatenate([a for a in (raw.x, raw.x_val, raw.x_test) if a is not None])
    x = x[:limit] if limit else x
    _check_features(RawData(x=x, y=np.zeros(len(x))), source)
    if "standardize" in preprocess:
        mean = np.asarray(preprocess["standardize"]["mean"], dtype=np.float32)
        std = np.asarray(preprocess["standardize"]["std"], dtype=np.float32)
        if mean.shape != x.shape[1:]:
            raise DataError(f"transfer set {source}: inputs of shape {x.shape[1:]}, the data's are {mean.shape}")
        x = (x - mean) / std
    x_t = torch.as_tensor(np.ascontiguousarray(x, dtype=np.int64 if x.dtype.kind in "iu" else np.float32))
    return ArrayDataset(x_t, torch.full((len(x_t),), UNLABELED, dtype=torch.long))


def _csv_features(path: Path, names: list[str]) -> np.ndarray:
    """A transfer-set CSV read with the labelled data's feature columns, in their stored order."""
    columns, rows = read_csv_rows(path)
    missing = [name for name in names if name not in columns]
    if missing:
        raise DataError(f"{path}: no column {missing[0]!r}; the labelled data has columns {', '.join(names)}")
    x = np.empty((len(rows), len(names)), dtype=np.float32)
    for i, row in enumerate(rows):
        for j, name in enumerate(names):
            try:
                x[i, j] = float(row[name])
            except ValueError:
                raise DataError(f"{path}: line {i + 2}, column {name!r}: {row[name]!r} is not a number") from None
    return x


def _check_features(raw: RawData, source: str) -> None:
    if raw.text is not None:
        for name, a in (("train", raw.x), ("val", raw.x_val), ("test", raw.x_test)):
            if a is not None and len(a) == 0:
                raise DataError(f"{source}: the {name} split is empty")
        return
    for name, a in (("train", raw.x), ("val", raw.x_val), ("test", raw.x_test)):
        if a is None:
            continue
        if (not np.issubdtype(a.dtype, np.number) and a.dtype != np.bool_) or np.iscomplexobj(a):
            raise DataError(f"{source}: {name} inputs are {a.dtype}, not real numbers")
        if len(a) == 0:
            raise DataError(f"{source}: the {name} split is empty")
        if not np.isfinite(a).all():
            row = int(np.argwhere(~np.isfinite(a.reshape(len(a), -1)))[0][0])
            raise DataError(f"{source}: {name} inputs hold NaN or infinite values (first at row {row}); clean them")
        if a.dtype.kind == "f" and a.dtype.itemsize > 4 and (np.abs(a) > FLOAT32_MAX).any():
            where = tuple(int(i) for i in np.argwhere(np.abs(a) > FLOAT32_MAX)[0])
            raise DataError(
                f"{source}: {name} input {where[0]} holds {float(a[where]):.3g} (at index {where[1:]}), more than "
                f"a 32-bit float holds ({FLOAT32_MAX:.3g}); rescale the inputs"
            )


def _split(x: np.ndarray, y: np.ndarray, fraction: float, seed: int, source: str, *more: np.ndarray):
    """A seeded split, stratified by class when the targets are class ids and every class has at least two
    examples; ``more`` arrays (aligned with ``x``) are split the same way."""
    from sklearn.model_selection import train_test_split

    stratify = None
    if y.ndim == 1 and not np.issubdtype(y.dtype, np.floating):  # class ids: keep each class's share
        counts = np.bincount(y)
        stratify = y if counts[counts > 0].min() >= 2 else None
    try:
        return train_test_split(x, y, *more, test_size=fraction, random_state=seed, stratify=stratify)
    except ValueError as exc:
        raise DataError(f"{source}: cannot split {len(y)} examples ({exc})") from None
