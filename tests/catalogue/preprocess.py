"""A timm or torchvision model's input images (``model.options.preprocess``): overrides that conflict with
the model or the data, each refused in one line before any stage trains."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image
from tests.catalogue import recipe


def student(tmp: Path, preprocess, source: str = "timm:test_resnet", data: str = "digits") -> list[str]:
    """The base recipe with a tiny timm student (no weights to fetch) whose view is ``preprocess``."""
    model = {"source": source, "pretrained": False, "preprocess": preprocess}
    return recipe(tmp, {"data.source": data, "student.model": model})


def rgb_folder(tmp: Path) -> str:
    for label in ("a", "b"):
        (tmp / "images" / label).mkdir(parents=True)
        for i in range(8):
            Image.new("RGB", (6, 6), (60 * i, 10, 200)).save(tmp / "images" / label / f"{i}.png")
    return f"imagefolder:{tmp / 'images'}"


def rows(tmp: Path) -> str:
    np.savez(tmp / "rows.npz", x=np.random.default_rng(0).normal(size=(40, 5)), y=np.arange(40) % 2)
    return f"npz:{tmp / 'rows.npz'}"


CASES: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "a size the model cannot take": (
        lambda t: student(t, {"size": 32}, source="timm:test_vit"),
        "preprocess.size [32, 32] does not fit, the model takes only 160×160 images (a fixed input size)",
    ),
    "a crop larger than the resized image": (
        lambda t: student(t, {"crop_pct": 1.25}),
        "preprocess.crop_pct 1.25 would crop more than the resized image holds",
    ),
    "an unknown preprocess option": (lambda t: student(t, {"crop": 0.9}), "preprocess.crop: unknown option"),
    "a preprocess that is not a mapping": (
        lambda t: student(t, "imagenet"),
        "preprocess must be pretrained, none, or a mapping of size, interpolation, crop_pct, mean, std",
    ),
    "mean and std of different lengths": (
        lambda t: student(t, {"mean": [0.5, 0.5], "std": [0.2]}),
        "preprocess.mean and std must give one value per channel, as many of each",
    ),
    "a mean for other channels than the images'": (
        lambda t: student(t, {"size": 16, "mean": [0.5, 0.5], "std": [0.2, 0.2]}, data=rgb_folder(t)),
        "normalises 2 channels (timm test_resnet's pretrained config, size, mean, std from the recipe), the images "
        "have 3; set data.options.mode: RGB",
    ),
    "model preprocessing of tabular rows": (
        lambda t: student(t, "pretrained", data=rows(t)),
        "asks for 160×160 images; npz:",
    ),
}
