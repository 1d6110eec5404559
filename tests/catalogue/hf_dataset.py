"""Hugging Face datasets (``hf_dataset:``): a column, a split or a path that is not there, a label column
that holds no labels, and the ``datasets`` package missing, each refused before training."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.catalogue import recipe


def saved(tmp: Path, folder: Path | None = None, **options) -> list[str]:
    """A saved DatasetDict (train and test) of ten 4×4 grey PNGs per class, read with ``options``."""
    import io

    import datasets
    from PIL import Image

    pngs, labels = [], []
    for i in range(20):
        image = io.BytesIO()
        Image.new("L", (4, 4), 10 * i).save(image, format="PNG")
        pngs.append({"bytes": image.getvalue(), "path": None})
        labels.append(i % 2)
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["dark", "light"])})
    whole = datasets.Dataset.from_dict({"image": pngs, "label": labels}, features=features)
    parts = {"train": whole.select(range(14)), "test": whole.select(range(14, 20))}
    datasets.disable_progress_bars()
    datasets.DatasetDict(parts).save_to_disk(str(tmp / "pets"))
    datasets.enable_progress_bars()
    return recipe(tmp, {"data": {"source": f"hf_dataset:{folder or tmp / 'pets'}", "options": options}})


def not_a_dataset(tmp: Path) -> list[str]:
    (tmp / "notes").mkdir()
    (tmp / "notes" / "readme.md").write_text("no data here\n")
    return saved(tmp, tmp / "notes")


def no_datasets_package(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # `import datasets` raises ImportError


CASES: dict[str, tuple] = {
    "a column that does not exist": (
        lambda t: saved(t, label_column="labels"),
        "pets (train split): no column 'labels' (did you mean \"label\"?); columns: image, label",
    ),
    "a split that does not exist": (
        lambda t: saved(t, split="validation"),
        "no split 'validation'; splits: train, test",
    ),
    "a path that is not a dataset": (not_a_dataset, "notes: not a Hugging Face dataset protege reads"),
    "a label column of images": (
        lambda t: saved(t, label_column="image"),
        "label column 'image' holds Image; a label is an integer, a ClassLabel, a string",
    ),
    "an image column that holds labels": (
        lambda t: saved(t, image_column="label"),
        "image column 'label' holds ClassLabel, not images",
    ),
    "a loading mode it lacks": (
        lambda t: saved(t, load="cache"),
        "data source 'hf_dataset': load: Input should be 'auto', 'memory' or 'stream' (got 'cache')",
    ),
    "the datasets package missing": (
        saved,
        "hf_dataset reads Hugging Face datasets: pip install 'protege[datasets]'",
        no_datasets_package,
    ),
}
