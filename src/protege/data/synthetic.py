"""Data sets generated offline from scikit-learn's generators, of any size: a regression task
(Friedman #1) and a multi-label one. Another ``seed`` (or ``offset``) draws new inputs of the same task,
so either also gives a transfer set."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field, NonNegativeInt

from protege.data.raw import SOURCES, RawData

Count = Annotated[int, Field(ge=2, le=10_000_000)]


@SOURCES.register("friedman1")
def friedman1(
    num_samples: Count = 2000,
    features: Annotated[int, Field(ge=5, le=1000)] = 10,
    noise: Annotated[float, Field(ge=0)] = 1.0,
    seed: NonNegativeInt = 0,
) -> RawData:
    """Friedman #1 (Friedman 1991; scikit-learn's ``make_friedman1``): inputs uniform on [0, 1]^features,
    target y = 10 sin(π x₁ x₂) + 20 (x₃ − 0.5)² + 10 x₄ + 5 x₅ + ``noise`` · N(0, 1); the other features
    are irrelevant. A regression task (``data.task: regression``)."""
    from sklearn.datasets import make_friedman1

    x, y = make_friedman1(n_samples=num_samples, n_features=features, noise=noise, random_state=seed)
    return RawData(x=x.astype(np.float32), y=y.astype(np.float32), label_names=["y"])


@SOURCES.register("multilabel_synthetic")
def multilabel_synthetic(
    num_samples: Count = 2000,
    features: Annotated[int, Field(ge=1, le=10_000)] = 20,
    labels: Annotated[int, Field(ge=2, le=1000)] = 5,
    labels_per_example: Annotated[int, Field(ge=1, le=1000)] = 2,
    seed: NonNegativeInt = 0,
    offset: NonNegativeInt = 0,
) -> RawData:
    """A multi-label task (``data.task: multilabel``) from scikit-learn's ``make_multilabel_classification``:
    bag-of-words counts over ``features`` words drawn from each present label's word distribution, about
    ``labels_per_example`` labels per example. ``seed`` fixes the task (its label and word distributions);
    examples ``offset`` to ``offset + num_samples`` of its sequence are returned, so another offset draws
    new examples of the same task."""
    from sklearn.datasets import make_multilabel_classification

    x, y = make_multilabel_classification(
        n_samples=offset + num_samples,
        n_features=features,
        n_classes=labels,
        n_labels=labels_per_example,
        allow_unlabeled=False,
        random_state=seed,
    )
    names = [f"label_{i}" for i in range(labels)]
    return RawData(x=x[offset:].astype(np.float32), y=y[offset:].astype(np.int64), label_names=names)


@SOURCES.register("mnist1d_pairs")
def mnist1d_pairs(num_samples: Count = 2000, seed: NonNegativeInt = 0) -> RawData:
    """A multi-label task (``data.task: multilabel``) built from MNIST-1D (Greydanus 2020), as MultiMNIST is
    from MNIST: each input is two MNIST-1D signals side by side (1 × 80 values), its labels the digits it
    shows (one or two of ten). ``seed`` draws other signals and pairs: another seed gives a transfer set."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.seed, args.train_split = 2 * num_samples, seed, 1.0
    signals = make_dataset(args)
    x, digits = signals["x"].astype(np.float32), signals["y"]
    left, right = np.arange(num_samples), np.arange(num_samples, 2 * num_samples)
    inputs = np.concatenate([x[left], x[right]], axis=1)[:, None, :]
    labels = np.zeros((num_samples, 10), dtype=np.int64)
    labels[np.arange(num_samples), digits[left]] = 1
    labels[np.arange(num_samples), digits[right]] = 1
    return RawData(x=inputs, y=labels, label_names=[str(d) for d in range(10)])


@SOURCES.register("multidigits")
def multidigits(
    num_samples: Count = 3000,
    overlap: Annotated[int, Field(ge=0, le=6)] = 2,
    test_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.25,
    seed: NonNegativeInt = 0,
) -> RawData:
    """A multi-task set built from scikit-learn's 8×8 digits as MultiMNIST is from MNIST (Sabour et al. 2017):
    two digits side by side on one 8 × (16 − ``overlap``) canvas, overlapping columns keeping the brighter
    pixel. Label columns: ``left`` and ``right`` (the digits, classes) and ``sum`` (their sum, a real value).
    The test pairs are drawn from digit images no training pair uses (``test_fraction`` of the images and
    of ``num_samples``), so no test image was seen in training."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images, digits = (bunch.images / 16.0).astype(np.float32), bunch.target
    order = np.random.default_rng(seed).permutation(len(images))
    cut = round(len(images) * test_fraction)
    test_count = max(1, round(num_samples * test_fraction))
    train = _digit_pairs(images, digits, order[cut:], num_samples - test_count, overlap, seed)
    test = _digit_pairs(images, digits, order[:cut], test_count, overlap, seed + 1)
    names = ["left", "right", "sum"]
    return RawData(x=train[0], y=train[1], x_test=test[0], y_test=test[1], label_names=names)


def _digit_pairs(
    images: np.ndarray, digits: np.ndarray, pool: np.ndarray, count: int, overlap: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` canvases of two images of ``pool`` side by side, and their (left, right, sum) labels."""
    rng = np.random.default_rng(seed * 7919 + 1)
    left, right = rng.choice(pool, count), rng.choice(pool, count)
    width = 16 - overlap
    canvas = np.zeros((count, 1, 8, width), dtype=np.float32)
    canvas[:, 0, :, :8] = images[left]
    canvas[:, 0, :, width - 8 :] = np.maximum(canvas[:, 0, :, width - 8 :], images[right])
    labels = np.stack([digits[left], digits[right], digits[left] + digits[right]], axis=1).astype(np.int64)
    return canvas, labels
