"""Augmentations a recipe names in ``train.augment``: per-example transforms from torchvision.transforms.v2
(crops, flips, TrivialAugment, RandAugment, random erasing, gaussian noise) and timm's Mixup / CutMix over
the batch, whose targets become soft (one probability per class). Each entry says which inputs it fits:
images (channels, height, width, values in [0, 1] for the photometric ones), or any real-valued inputs
(tabular rows, 1-D signals, images); token ids take none. Applying them is protege.data.augmented."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import torch
from pydantic import Field, NonNegativeFloat, PositiveFloat

from protege.errors import ConfigError, DataError
from protege.options import MAX_SIDE, Scale, Share, signature_fields
from protege.registry import Registry

Builder = Callable[..., Any]
AUGMENTATIONS: Registry[Builder] = Registry("augmentation", fields=lambda f: signature_fields(f, skip=("shape",)))

IMAGES, REAL = "images", "real-valued inputs"
"""What an augmentation fits: images (channels, height, width), or any real-valued inputs."""
Pair = tuple[PositiveFloat, PositiveFloat]
Side = Annotated[int, Field(ge=1, le=MAX_SIDE)]
Padding = Annotated[int, Field(ge=0, le=MAX_SIDE)]
Mode = Literal["batch", "pair", "elem"]
"""timm's Mixup modes: one λ for the batch, one per pair of examples, or one per example."""


def augmentation(name: str, fits: str, mixes: bool = False) -> Callable[[Builder], Builder]:
    """Register a builder ``(shape, **options)`` that fits ``fits``; ``mixes``: it mixes examples of a batch
    (its builder returns timm Mixup's arguments, not a per-example transform)."""

    def register(builder: Builder) -> Builder:
        builder.fits, builder.mixes = fits, mixes  # type: ignore[attr-defined]
        return AUGMENTATIONS.register(name)(builder)

    return register


@augmentation("random_resized_crop", IMAGES)
def random_resized_crop(shape: tuple[int, ...], scale: tuple[Scale, Scale] = (0.08, 1.0), ratio: Pair = (0.75, 4 / 3)):
    """A random area (``scale`` of the image) and aspect ``ratio``, resized back to the image's size."""
    from torchvision.transforms import v2

    return v2.RandomResizedCrop(list(shape[1:]), scale=_ordered(scale, "scale"), ratio=_ordered(ratio, "ratio"))


@augmentation("random_crop", IMAGES)
def random_crop(
    shape: tuple[int, ...],
    padding: Padding = 0,
    size: tuple[Side, Side] | None = None,
    padding_mode: Literal["constant", "edge", "reflect", "symmetric"] = "constant",
):
    """A ``size`` window (default: the image's size) at a random place of the image padded by ``padding``
    on each side (CIFAR's 4), resized back to the image's size when smaller."""
    from torchvision.transforms import v2

    height, width = shape[1:]
    window = tuple(size) if size is not None else (height, width)
    room = (height + 2 * padding, width + 2 * padding)
    if window[0] > room[0] or window[1] > room[1]:
        padded = f" ({room[0]}×{room[1]} with padding {padding})" if padding else ""
        raise DataError(
            f"random_crop: the images are {height}×{width} pixels{padded}, smaller than the crop size "
            f"{list(window)}; crop at most the image's size or add padding"
        )
    crop = v2.RandomCrop(list(window), padding=padding or None, padding_mode=padding_mode)
    return crop if window == (height, width) else v2.Compose([crop, v2.Resize([height, width])])


@augmentation("horizontal_flip", IMAGES)
def horizontal_flip(shape: tuple[int, ...], p: Share = 0.5):
    """A left-right mirror with probability ``p``."""
    from torchvision.transforms import v2

    return v2.RandomHorizontalFlip(p)


@augmentation("trivial_augment", IMAGES)
def trivial_augment(shape: tuple[int, ...], num_magnitude_bins: Annotated[int, Field(ge=2, le=256)] = 31):
    """TrivialAugment (Müller & Hutter 2021): one photometric or geometric op at a random strength."""
    from torchvision.transforms import v2

    return v2.TrivialAugmentWide(num_magnitude_bins=num_magnitude_bins)


@augmentation("rand_augment", IMAGES)
def rand_augment(
    shape: tuple[int, ...],
    num_ops: Annotated[int, Field(ge=1, le=16)] = 2,
    magnitude: Annotated[int, Field(ge=0, le=255)] = 9,
    num_magnitude_bins: Annotated[int, Field(ge=2, le=256)] = 31,
):
    """RandAugment (Cubuk et al. 2020): ``num_ops`` random ops at strength ``magnitude`` of the bins."""
    from torchvision.transforms import v2

    if magnitude >= num_magnitude_bins:
        raise ConfigError(
            f"rand_augment: magnitude {magnitude} must be below num_magnitude_bins ({num_magnitude_bins})"
        )
    return v2.RandAugment(num_ops=num_ops, magnitude=magnitude, num_magnitude_bins=num_magnitude_bins)


@augmentation("random_erasing", IMAGES)
def random_erasing(
    shape: tuple[int, ...],
    p: Share = 0.5,
    scale: tuple[Scale, Scale] = (0.02, 0.33),
    ratio: Pair = (0.3, 3.3),
    value: float = 0.0,
):
    """Random erasing (Zhong et al. 2020): with probability ``p``, a rectangle set to ``value``."""
    from torchvision.transforms import v2

    return v2.RandomErasing(p=p, scale=_ordered(scale, "scale"), ratio=_ordered(ratio, "ratio"), value=value)


@augmentation("gaussian_noise", REAL)
def gaussian_noise(shape: tuple[int, ...], sigma: PositiveFloat = 0.1, clip: bool = False):
    """Independent normal noise of standard deviation ``sigma`` on every value; ``clip`` keeps [0, 1]."""
    from torchvision.transforms import v2

    return v2.GaussianNoise(mean=0.0, sigma=sigma, clip=clip)


@augmentation("mixup", REAL, mixes=True)
def mixup(
    shape: tuple[int, ...],
    alpha: PositiveFloat = 0.8,
    cutmix_alpha: NonNegativeFloat = 0.0,
    prob: Share = 1.0,
    switch_prob: Share = 0.5,
    mode: Mode = "batch",
) -> dict:
    """Mixup (Zhang et al. 2018): λ·x_i + (1−λ)·x_j and the same mix of their targets, λ ~ Beta(α, α); with
    ``cutmix_alpha`` > 0 (images), CutMix instead with probability ``switch_prob``."""
    if cutmix_alpha > 0 and len(shape) != 3:
        raise DataError(f"mixup: cutmix_alpha pastes image patches; the inputs are {_kind(shape)}")
    return {"mixup_alpha": alpha, "cutmix_alpha": cutmix_alpha, "prob": prob, "switch_prob": switch_prob, "mode": mode}


@augmentation("cutmix", IMAGES, mixes=True)
def cutmix(shape: tuple[int, ...], alpha: PositiveFloat = 1.0, prob: Share = 1.0, mode: Mode = "batch") -> dict:
    """CutMix (Yun et al. 2019): a patch of x_j pasted into x_i, the targets mixed by the patch's area."""
    return {"mixup_alpha": 0.0, "cutmix_alpha": alpha, "prob": prob, "mode": mode}


def _ordered(pair: tuple[float, float], name: str) -> tuple[float, float]:
    if pair[0] > pair[1]:
        raise ConfigError(f"{name}: the lower bound {pair[0]} is above the upper {pair[1]}; give [low, high]")
    return pair


def _kind(shape: Sequence[int]) -> str:
    kinds = {1: "tabular rows", 2: "1-D signals (channels, length)", 3: "images (channels, height, width)"}
    return f"{kinds.get(len(shape), f'{len(shape)}-dimensional inputs')} of shape {tuple(shape)}"


@dataclass(frozen=True)
class Augmentation:
    """A stage's augmentations, built for its inputs: the per-example transforms in order, and timm Mixup's
    arguments when the batch is mixed (its number of classes comes from the data)."""

    names: tuple[str, ...]
    per_example: Any | None
    """A torchvision v2 transform of one example (channels, ...) or None."""
    mixing: dict | None


def check_entries(entries: Sequence[Any], task: str, where: str = "train.augment") -> str | None:
    """The names and options of ``train.augment`` (AugmentConfig blocks), before any data is read: known
    names, valid options, at most one mixing entry, and mixing only of class targets. Returns the name of
    the entry that mixes the batch, if any."""
    mixing = []
    for i, entry in enumerate(entries):
        try:
            AUGMENTATIONS.check_options(entry.name, entry.options)
        except ConfigError as exc:
            raise ConfigError(f"{where}[{i}]: {exc}") from None
        if AUGMENTATIONS.get(entry.name).mixes:
            mixing.append(entry.name)
    if len(mixing) > 1:
        raise ConfigError(
            f"{where}: {' and '.join(mixing)} both mix the batch; give one (mixup's cutmix_alpha switches to CutMix)"
        )
    if mixing and task != "classification":
        raise ConfigError(f"{where}: {mixing[0]} mixes class targets into soft ones; a {task} task has no classes")
    return mixing[0] if mixing else None


def build_augmentation(
    entries: Sequence[Any], shape: Sequence[int], dtype: torch.dtype, task: str, where: str = "train.augment"
) -> Augmentation:
    """The augmentations of ``entries`` for inputs of ``shape`` (one example) and ``dtype``; an entry that
    does not fit them (a crop of tabular rows, noise on token ids) is a one-line error."""
    from torchvision.transforms import v2

    check_entries(entries, task, where)
    shape = tuple(shape)
    transforms, mixing = [], None
    for i, entry in enumerate(entries):
        builder = AUGMENTATIONS.get(entry.name)
        at = f"{where}[{i}]: {entry.name}"
        if not dtype.is_floating_point:
            raise DataError(f"{at} changes real values; the inputs are token ids ({dtype}), which take no augmentation")
        if builder.fits == IMAGES and len(shape) != 3:
            raise DataError(f"{at} transforms images (channels, height, width); the inputs are {_kind(shape)}")
        try:
            built = builder(shape, **AUGMENTATIONS.check_options(entry.name, entry.options))
        except (ConfigError, DataError) as exc:
            raise type(exc)(f"{where}[{i}]: {exc}") from None
        if builder.mixes:
            mixing = built
        else:
            transforms.append(built)
    per_example = None if not transforms else transforms[0] if len(transforms) == 1 else v2.Compose(transforms)
    return Augmentation(tuple(entry.name for entry in entries), per_example, mixing)
