"""``hf_dataset:path``: a Hugging Face dataset on disk (``save_to_disk``, Parquet, Arrow, or a local folder
``load_dataset`` reads), as images, texts or numeric features with a label column.

The dataset's own train/validation/test splits are kept (or ``split`` names the one to use, and the loader
draws the rest); class names come from a ``ClassLabel`` label. Images are decoded as ``imagefolder:``
decodes files, and by default streamed from the memory-mapped rows when they would not fit in 1 GiB;
texts go through TF-IDF or a Hugging Face model's tokenizer, as a CSV's ``text_column`` does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import PositiveInt

from protege.console import log
from protege.data.hf_columns import Splits, check_columns, read_features, read_labels, read_texts
from protege.data.hf_images import image_splits
from protege.data.hf_open import named_split, open_dataset, open_splits
from protege.data.images import Size, Workers
from protege.data.raw import SOURCES, RawData
from protege.errors import DataError
from protege.options import ImageMode


@SOURCES.register("hf_dataset")
def hf_dataset(
    path: Path,
    split: str | None = None,
    label_column: str = "label",
    image_column: str | None = None,
    text_column: str | None = None,
    feature_columns: list[str] | None = None,
    max_features: PositiveInt = 2000,
    size: Size | None = None,
    mode: ImageMode | None = None,
    load: Literal["auto", "memory", "stream"] = "auto",
    num_workers: Workers | None = None,
    cache_dir: str | None = None,
) -> RawData:
    """A Hugging Face dataset: its ``label_column`` and one ``image_column`` (found by its Image feature when
    there is one), a ``text_column``, or numeric ``feature_columns`` (default: every column but the label);
    ``split`` picks one split. ``size``, ``mode``, ``load`` (auto, memory, stream) and ``num_workers`` are
    imagefolder's; ``max_features`` is the TF-IDF vocabulary; ``cache_dir`` holds the Arrow copy
    ``datasets`` makes of Parquet files (``PROTEGE_CACHE_DIR``)."""
    splits = open_splits(path, split, cache_dir)
    for name, dataset in splits.items():
        if len(dataset) == 0:
            raise DataError(f"{path}: the {name} split has no rows")
    image_column = image_column or _image_column(splits, text_column, feature_columns, path)
    inputs = [image_column] if image_column else [text_column] if text_column else feature_columns or []
    check_columns(splits, [label_column, *inputs], path)
    labels, class_names = read_labels(splits, label_column, path)
    if image_column is not None:
        target_size = (size[0], size[1]) if size is not None else None
        raw = image_splits(splits, image_column, labels, path, target_size, mode, load, num_workers)
        raw.class_names = class_names
        return raw
    if text_column is not None:
        log(f"hf_dataset: {_rows(splits):,} texts read into memory")
        texts = read_texts(splits, text_column, path)
        return _raw(texts, labels, class_names, text={"column": text_column, "max_features": max_features})
    columns = feature_columns or [c for c in splits["train"].column_names if c != label_column]
    if not columns:
        raise DataError(f"{path}: no columns besides the label column {label_column!r}")
    check_columns(splits, columns, path)  # the train split's columns, in every split
    log(f"hf_dataset: {_rows(splits):,} rows of {len(columns)} features read into memory")
    return _raw(read_features(splits, columns, path), labels, class_names, preprocess={"features": columns})


hf_dataset.takes_file_or_directory = True  # type: ignore[attr-defined]


def _image_column(splits: Splits, text_column: str | None, features: list[str] | None, path: Path) -> str | None:
    """The one column with a datasets ``Image`` feature, unless the recipe reads texts or features."""
    if text_column is not None or features is not None:
        return None
    found = [name for name, feature in splits["train"].features.items() if type(feature).__name__ == "Image"]
    if len(found) > 1:
        raise DataError(f"{path}: columns {', '.join(found)} all hold images; name one with image_column")
    return found[0] if found else None


def _rows(splits: Splits) -> int:
    return sum(len(dataset) for dataset in splits.values())


def _raw(x: dict[str, np.ndarray], y: dict[str, np.ndarray], class_names: list[str] | None, **more) -> RawData:
    """Raw data with the splits the dataset gave (the loader draws the others)."""
    return RawData(
        x=x["train"],
        y=y["train"],
        x_val=x.get("val"),
        y_val=y.get("val"),
        x_test=x.get("test"),
        y_test=y.get("test"),
        class_names=class_names,
        **more,
    )


def dataset_texts(path: Path, options: dict, column: str, limit: int | None) -> list[str]:
    """The first ``limit`` texts of ``column`` over every split of the dataset at ``path`` (or the one
    ``options.split`` names), no label column needed: a transfer set's texts."""
    found = open_dataset(path, options.get("cache_dir"))
    parts = {options["split"]: named_split(found, options["split"], path)} if options.get("split") else found
    if limit is not None:  # read no more rows than the set keeps
        starts = np.cumsum([0, *(len(dataset) for dataset in parts.values())])
        parts = {
            name: dataset.select(range(min(len(dataset), max(0, limit - int(start)))))
            for (name, dataset), start in zip(parts.items(), starts, strict=False)
        }
    check_columns(parts, [column], path)
    return [text for texts in read_texts(parts, column, path).values() for text in texts.tolist()]
