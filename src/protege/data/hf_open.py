"""Opening a Hugging Face dataset on disk as protege's splits: a folder written by ``save_to_disk`` (a
``Dataset`` or a ``DatasetDict``), a Parquet or Arrow file, or any local folder ``datasets.load_dataset``
reads (Parquet, Arrow, CSV or JSON files, an image folder). Only local builders run, with the hub
switched off, and no code from the data set is ever run: nothing is downloaded."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from protege.console import log
from protege.errors import DataError, did_you_mean

SPLIT_NAMES = {"train": "train", "validation": "val", "valid": "val", "val": "val", "dev": "val", "test": "test"}
"""A dataset's own split names that protege keeps, and the split each becomes."""
NOT_A_DATASET = (
    "give a folder written by save_to_disk, a .parquet or .arrow file, or a folder of data files that "
    "datasets.load_dataset reads"
)


def require_datasets() -> ModuleType:
    """The ``datasets`` package, or one line saying how to install it."""
    try:
        import datasets
    except ImportError:
        raise DataError("hf_dataset reads Hugging Face datasets: pip install 'protege[datasets]'") from None
    return datasets


def open_splits(path: Path, split: str | None, cache_dir: str | None) -> dict[str, Any]:
    """protege's splits of the dataset at ``path`` (``train`` and, when the dataset has them, ``val`` and
    ``test``), each a ``datasets.Dataset``: the one ``split`` named, the dataset's only one, or its own
    train/validation/test splits (the loader draws the ones it lacks)."""
    found = open_dataset(path, cache_dir)
    if split is not None:
        return {"train": named_split(found, split, path)}
    if len(found) == 1:
        return {"train": next(iter(found.values()))}
    kept: dict[str, Any] = {}
    for name, dataset in found.items():
        ours = SPLIT_NAMES.get(name)
        if ours in kept:
            first = kept[ours][0]
            raise DataError(f"{path}: splits {first!r} and {name!r} are both a {ours} split; pick one with split")
        if ours is not None:
            kept[ours] = (name, dataset)
    if "train" not in kept:
        raise DataError(f"{path}: no train split; splits: {', '.join(found)}; name the one to use with split")
    left = [name for name in found if name not in SPLIT_NAMES]
    if left:
        log(f"hf_dataset: splits {', '.join(left)} left out (protege keeps train, validation and test)")
    return {ours: dataset for ours, (_, dataset) in kept.items()}


def named_split(found: dict[str, Any], split: str, path: Path) -> Any:
    """The split called ``split``, or one line naming the splits there are."""
    if split not in found:
        raise DataError(f"{path}: no split {split!r}{did_you_mean(split, found)}; splits: {', '.join(found)}")
    return found[split]


def open_dataset(path: Path, cache_dir: str | None) -> dict[str, Any]:
    """Every split of the dataset at ``path`` by its own name; anything that is not a dataset is one line."""
    from protege.data.image_cache import cache_root

    datasets = require_datasets()
    cache = str(cache_root(cache_dir, "datasets"))
    with _offline_and_quiet(datasets):
        try:
            if (path / "state.json").is_file() or (path / "dataset_dict.json").is_file():
                loaded = datasets.load_from_disk(str(path))
            elif path.suffix == ".arrow":
                loaded = _arrow_file(datasets, path, cache)
            elif path.suffix == ".parquet":
                loaded = datasets.load_dataset("parquet", data_files=str(path), cache_dir=cache)
            elif path.is_dir():  # an absolute path: a folder named like a builder ("csv") is still a folder
                loaded = datasets.load_dataset(str(path.resolve()), cache_dir=cache)
            else:
                raise DataError(f"{path}: not a Hugging Face dataset; {NOT_A_DATASET}")
        except DataError:
            raise
        except Exception as exc:  # datasets and pyarrow raise many kinds of errors on what they cannot read
            text = str(exc).strip()
            problem = text.splitlines()[0] if text else type(exc).__name__
            raise DataError(f"{path}: not a Hugging Face dataset protege reads ({problem}); {NOT_A_DATASET}") from None
    return {"train": loaded} if isinstance(loaded, datasets.Dataset) else dict(loaded)


def _arrow_file(datasets: ModuleType, path: Path, cache: str) -> Any:
    """An Arrow file memory-mapped where it lies (the stream format ``datasets`` writes), or, in the IPC
    file format, copied into the cache by the ``arrow`` builder."""
    import pyarrow as pa

    try:
        return datasets.Dataset.from_file(str(path))
    except pa.ArrowInvalid:
        return datasets.load_dataset("arrow", data_files=str(path), cache_dir=cache)


@contextmanager
def _offline_and_quiet(datasets: ModuleType) -> Iterator[None]:
    """The hub switched off and the progress bars hidden while a dataset is opened, both restored after."""
    offline, bars = datasets.config.HF_HUB_OFFLINE, datasets.utils.are_progress_bars_disabled()
    datasets.config.HF_HUB_OFFLINE = True
    datasets.utils.disable_progress_bars()
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE = offline
        if not bars:
            datasets.utils.enable_progress_bars()
