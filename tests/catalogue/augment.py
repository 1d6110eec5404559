"""``train.augment``: unknown names and options, augmentations that do not fit the data, and combinations
that cannot run, each refused before any stage trains."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from tests.catalogue import recipe
from tests.conftest import write_sentiment_csv

TEACHER = {"model": {"source": "mlp", "hidden": 8}, "train": {"epochs": 1, "batch_size": 256}}


def augmented(tmp: Path, *entries, **changes) -> list[str]:
    """The base recipe (digits, 8×8 grey images) with a teacher, its student trained under ``entries``."""
    train = {"epochs": 1, "batch_size": 256, "augment": list(entries)}
    return recipe(tmp, {"teacher": TEACHER, "student.objective": {"name": "kd"}, "student.train": train, **changes})


def tabular(tmp: Path, *entries) -> list[str]:
    rng = np.random.default_rng(0)
    np.savez(tmp / "rows.npz", x=rng.normal(size=(60, 5)), y=np.arange(60) % 2)
    return augmented(tmp, *entries, **{"data.source": f"npz:{tmp / 'rows.npz'}"})


def token_ids(tmp: Path) -> list[str]:
    """A fasttext student reads the sentiment texts as word ids."""
    texts = write_sentiment_csv(tmp / "sentiment.csv", n=40)
    data = {"source": f"csv:{texts}", "options": {"text_column": "text"}}
    student = {"model": {"source": "fasttext"}, "train": {"epochs": 1, "augment": ["gaussian_noise"]}}
    return recipe(tmp, {"data": data, "student": student})


def viewed(tmp: Path, *entries, views: int = 2) -> list[str]:
    """The base recipe's student distilled on ``views`` cached augmented views per example."""
    train = {"epochs": 1, "batch_size": 256, "augment": list(entries), "augment_views": views}
    return recipe(tmp, {"teacher": TEACHER, "student.objective": {"name": "kd"}, "student.train": train})


def streamed_views(tmp: Path) -> list[str]:
    from tests.catalogue.images import streamed_folder

    train = {"epochs": 1, "augment": ["horizontal_flip"], "augment_views": 2}
    return streamed_folder(tmp, **{"student.train": train})


def small_views_limit(monkeypatch) -> None:
    import protege.data.cached_views as cached_views

    monkeypatch.setattr(cached_views, "VIEWS_LIMIT_BYTES", 1024**2)  # digits' 1,000-odd 8×8 images: 0.3 MB a view


CONTINUAL = {"scenario": "class_incremental", "experiences": 2, "strategies": ["naive"]}
CASES: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "unknown augmentation": (
        lambda t: augmented(t, "horizontal_flipp"),
        "student.train.augment[0]: unknown augmentation 'horizontal_flipp' (did you mean \"horizontal_flip\"?)",
    ),
    "unknown augmentation option": (
        lambda t: augmented(t, {"name": "random_erasing", "probability": 0.5}),
        "student.train.augment[0]: augmentation 'random_erasing' has no option 'probability'",
    ),
    "augmentation option out of range": (
        lambda t: augmented(t, {"name": "mixup", "alpha": 0}),
        "augmentation 'mixup': alpha: Input should be greater than 0",
    ),
    "a crop of tabular rows": (
        lambda t: tabular(t, "random_resized_crop"),
        "student.train.augment[0]: random_resized_crop transforms images (channels, height, width); the inputs "
        "are tabular rows of shape (5,)",
    ),
    "a flip of tabular rows": (
        lambda t: tabular(t, "gaussian_noise", "horizontal_flip"),
        "augment[1]: horizontal_flip",
    ),
    "noise on token ids": (
        token_ids,
        "student.train.augment[0]: gaussian_noise changes real values; the inputs are token ids (torch.int64)",
    ),
    "an image smaller than the crop": (
        lambda t: augmented(t, {"name": "random_crop", "size": [12, 12], "padding": 1}),
        "random_crop: the images are 8×8 pixels (10×10 with padding 1), smaller than the crop size [12, 12]",
    ),
    "mixup and cutmix together": (
        lambda t: augmented(t, "mixup", "cutmix"),
        "student.train.augment: mixup and cutmix both mix the batch; give one",
    ),
    "mixup of regression targets": (
        lambda t: recipe(t, {"data.task": "regression", "student.train.augment": ["mixup"]}),
        "mixup mixes class targets into soft ones; a regression task has no classes",
    ),
    "mixup under attack": (
        lambda t: recipe(t, {"robust": {"epsilon": 0.1}, "student.train.augment": ["horizontal_flip", "cutmix"]}),
        "student.train.augment: cutmix's soft targets do not fit the robust block's attacks, which read class ids",
    ),
    "mixup on cached views": (
        lambda t: viewed(t, "horizontal_flip", "mixup"),
        "student.train.augment_views: mixup mixes each batch anew, which no cached view of one example can hold",
    ),
    "cached views without augmentations": (
        lambda t: viewed(t),
        "student.train.augment_views: caches augmented views of each example; give train.augment too",
    ),
    "cached views of streamed images": (
        streamed_views,
        "student.train.augment_views: 2 views of every example are kept in memory, and the training examples are "
        "streamed from files; set data.options.load: memory",
    ),
    "cached views beyond the memory limit": (
        lambda t: viewed(t, "gaussian_noise", views=8),
        "student.train.augment_views: 8 views of 1,",
        small_views_limit,
    ),
    "augmentation in a continual stream": (
        lambda t: recipe(t, {"continual": CONTINUAL, "student.train.augment": ["horizontal_flip"]}),
        "student.train.augment: augmentation is not supported with a continual block yet",
    ),
}
