"""The training set a stage's ``train.augment`` (and ``train.augment_views``) makes of its data: the checks
that it can be augmented, then fresh draws per epoch (protege.data.augmented) or views drawn once and
cycled by epoch (protege.data.cached_views)."""

from __future__ import annotations

from collections.abc import Sequence

from torch.utils.data import DataLoader, Dataset

from protege.data.augment import build_augmentation
from protege.data.augmented import AugmentedDataset
from protege.data.cached_views import CachedViews
from protege.data.dataset import first_inputs
from protege.data.views import ViewedDataset
from protege.errors import ConfigError


def augmented_train_set(
    train: Dataset | DataLoader,
    entries: Sequence,
    seed: int,
    num_classes: int | None,
    task: str,
    views: int | None = None,
) -> Dataset | DataLoader:
    """``train`` with the stage's ``train.augment`` entries applied to its batches; as it is without any.
    With ``views`` (``train.augment_views``), that many views of each example drawn once and cycled by
    epoch (protege.data.cached_views), so a frozen teacher can label them once."""
    if not entries:
        if views is not None:
            raise ConfigError("train.augment_views caches augmented views of each example; give train.augment too")
        return train
    if isinstance(train, DataLoader) or not callable(getattr(train, "__getitems__", None)):
        raise ConfigError(
            "train.augment augments protege's datasets; give a Dataset (or a data bundle), not a DataLoader"
        )
    if isinstance(train, ViewedDataset):
        raise ConfigError(
            "train.augment: the teacher reads the examples through another encoding, which the augmentations "
            "would not change; use one view (the same model kind) for teacher and student"
        )
    if callable(getattr(train, "batch_sampler", None)):
        raise ConfigError("train.augment: this training set composes its own batches (a replay buffer); remove augment")
    sample = first_inputs(train, 1)
    augmentation = build_augmentation(entries, sample.shape[1:], sample.dtype, task)
    if views is not None:
        return CachedViews(train, augmentation, seed, views)
    return AugmentedDataset(train, augmentation, seed, num_classes)
