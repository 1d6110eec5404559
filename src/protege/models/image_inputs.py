"""What a ``timm:`` or ``torchvision:`` model asks of its input images: the size, interpolation, crop and
mean/std of its pretrained configuration (timm's ``resolve_data_config``, torchvision's weights'
``transforms()``), with the recipe's ``preprocess`` option on top.

The geometry (resize the shorter side to ``size / crop_pct`` with ``interpolation``, then take the centre
``size``) is the model's *view* of the images (protege.data.views): applied where the images are read, so
augmentations still see pixels in [0, 1]. The mean/std are applied by the model itself, as its first step
(protege.models.vision), so exported files carry them. Both are recorded in the card as
``preprocess.model_input``, and ``predict`` replays the geometry on raw image files.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, ValidationError

from protege.errors import DataError, ModelError
from protege.options import MAX_SIDE

Interpolation = Literal["nearest", "bilinear", "bicubic"]
Side = Annotated[int, Field(ge=1, le=MAX_SIDE)]
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
CHUNK = 256
"""Images resized at once when a split in memory is resized."""


@dataclass(frozen=True)
class ModelInput:
    """A model's input images: ``size`` (height, width) cut from the centre of the image resized so its
    shorter side is ``max(size) / crop_pct``; ``mean``/``std`` per channel (None: the model reads [0, 1])."""

    size: tuple[int, int]
    interpolation: str
    crop_pct: float
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    origin: str
    """Where the values come from: "timm resnet18's pretrained config", with the recipe's changes named."""

    @property
    def resize(self) -> int:
        """The shorter side before the centre crop (timm's ``floor(img_size / crop_pct)``)."""
        return math.floor(max(self.size) / self.crop_pct)

    def key(self) -> tuple:
        """What two models must share to read one view: the geometry (each model applies its own mean/std)."""
        return ("image", self.size, self.interpolation, self.crop_pct)

    def describe(self) -> str:
        """``224×224 bicubic, crop 0.875, ImageNet mean/std``."""
        height, width = self.size
        if self.mean is None:
            values = "no normalisation"
        elif (self.mean, self.std) == IMAGENET:
            values = "ImageNet mean/std"
        else:
            values = f"mean {_short(self.mean)}, std {_short(self.std)}"
        return f"{height}×{width} {self.interpolation}, crop {self.crop_pct:g}, {values}"

    def to_card(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_card(cls, stored: dict) -> ModelInput:
        mean, std = stored.get("mean"), stored.get("std")
        return cls(
            size=(int(stored["size"][0]), int(stored["size"][1])),
            interpolation=stored["interpolation"],
            crop_pct=float(stored["crop_pct"]),
            mean=tuple(float(v) for v in mean) if mean is not None else None,
            std=tuple(float(v) for v in std) if std is not None else None,
            origin=stored.get("origin", "the saved model's card"),
        )

    def for_channels(self, channels: int, who: str) -> ModelInput:
        """The mean/std for images of ``channels`` channels: as given when they number one per channel; a
        grey image reads the average of an RGB model's three values (its first convolution sums the three)."""
        if self.mean is None or len(self.mean) == channels:
            return self
        if channels == 1 and len(self.mean) == 3:
            return replace(self, mean=(float(np.mean(self.mean)),), std=(float(np.mean(self.std)),))
        raise DataError(
            f"{who} normalises {len(self.mean)} channels ({self.origin}), the images have {channels}; set "
            "data.options.mode: RGB, or give model.options.preprocess.mean and std with one value per channel"
        )

    def resize_images(self, x: torch.Tensor) -> torch.Tensor:
        """Images (N, channels, height, width) or one image, resized and centre-cropped by torchvision's
        functional transforms (antialiased); pixels in [0, 1] stay there (bicubic overshoots)."""
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms.v2 import functional

        mode = InterpolationMode(self.interpolation)
        unit = bool(x.min() >= 0 and x.max() <= 1)
        resized = functional.resize(x, [self.resize], interpolation=mode, antialias=mode != InterpolationMode.NEAREST)
        cropped = functional.center_crop(resized, list(self.size))
        return cropped.clamp_(0.0, 1.0) if unit else cropped

    def resize_array(self, x: np.ndarray) -> np.ndarray:
        """:meth:`resize_images` on a split held in memory, a chunk at a time."""
        parts = [self.resize_images(torch.from_numpy(x[i : i + CHUNK])).numpy() for i in range(0, len(x), CHUNK)]
        return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)


def _short(values: tuple[float, ...]) -> str:
    return "[" + ", ".join(f"{v:.3g}" for v in values) + "]"


class PreprocessOptions(BaseModel):
    """``model.options.preprocess`` as a mapping: the pretrained configuration with these values replaced."""

    model_config = ConfigDict(extra="forbid")
    size: Side | Annotated[list[Side], Field(min_length=2, max_length=2)] | None = None
    interpolation: Interpolation | None = None
    crop_pct: PositiveFloat | None = None
    mean: Annotated[list[float], Field(min_length=1, max_length=4)] | None = None
    std: Annotated[list[PositiveFloat], Field(min_length=1, max_length=4)] | None = None


LIBRARY_KINDS = ("timm", "torchvision")


def resolve_model_input(source: str, options: dict) -> ModelInput | None:
    """The input images ``source`` asks for with its recipe ``options``: its pretrained configuration when
    it starts from pretrained weights (``pretrained``, the default, or a ``weights`` file: a protege model's
    own, when its card beside the file records them) or the recipe says ``preprocess: pretrained``; that
    configuration changed by a ``preprocess`` mapping; None (the images as the data gives them) for
    ``preprocess: none``, a model trained from scratch, or another kind of source."""
    kind, _, name = source.partition(":")
    if kind not in LIBRARY_KINDS:
        return None
    asked = options.get("preprocess")
    if asked is None and options.get("pretrained", True) is False and options.get("weights") is None:
        return None
    if asked == "none":
        return None
    if asked not in (None, "pretrained") and not isinstance(asked, dict):
        raise ModelError(
            f"model {source!r}: preprocess must be pretrained, none, or a mapping of size, interpolation, "
            f"crop_pct, mean, std (got {asked!r:.60})"
        )
    config = _saved_beside(options.get("weights"))
    if config is None:
        config = timm_config(name) if kind == "timm" else torchvision_config(name)
    if isinstance(asked, dict):
        config = _overridden(config, asked, source)
    _check_fixed_size(kind, name, options, config, source)
    return config


def _saved_beside(weights: Any) -> ModelInput | None:
    """The input images recorded in the card beside a ``weights`` file that a protege run saved
    (``<stage>/model/model.safetensors``): the backbone goes on reading images as it was trained on them."""
    if not isinstance(weights, str):
        return None
    from protege.models.store import read_card

    folder = Path(weights).expanduser().parent
    if not (folder / "model.json").is_file():
        return None
    stored = read_card(folder).preprocess.get("model_input")
    if stored is None:
        return None
    return replace(ModelInput.from_card(stored), origin=f"the card of {folder} (its weights)")


def timm_config(name: str) -> ModelInput:
    """timm's ``resolve_data_config`` of the model's pretrained configuration (no weights are fetched)."""
    import timm
    from timm.data import resolve_data_config

    if not timm.is_model(name):
        return _unknown("timm", name)
    config = resolve_data_config({}, pretrained_cfg=timm.models.get_pretrained_cfg(name).to_dict())
    _, height, width = config["input_size"]
    return ModelInput(
        size=(int(height), int(width)),
        interpolation=config["interpolation"] if config["interpolation"] in ("nearest", "bilinear") else "bicubic",
        crop_pct=float(config["crop_pct"]),
        mean=tuple(float(v) for v in config["mean"]),
        std=tuple(float(v) for v in config["std"]),
        origin=f"timm {name}'s pretrained config",
    )


def torchvision_config(name: str) -> ModelInput:
    """The transforms of torchvision's default weights for the model (the enum's, nothing is fetched)."""
    from torchvision import models

    if name not in models.list_models():
        return _unknown("torchvision", name)
    try:
        transforms = models.get_model_weights(name).DEFAULT.transforms()
    except (ValueError, AttributeError, TypeError):
        raise ModelError(
            f"torchvision:{name} has no pretrained weights, so no preprocessing to follow; set "
            "model.options.preprocess: none, or give its size, interpolation, crop_pct, mean and std"
        ) from None
    crop, resize = int(transforms.crop_size[0]), int(transforms.resize_size[0])
    return ModelInput(
        size=(crop, crop),
        interpolation=transforms.interpolation.value,
        crop_pct=crop / resize,
        mean=tuple(float(v) for v in transforms.mean),
        std=tuple(float(v) for v in transforms.std),
        origin=f"torchvision {name}'s default weights",
    )


def _unknown(kind: str, name: str) -> ModelInput:
    """An unknown model name: building it names the problem (with a suggestion), so nothing is said here."""
    return ModelInput((224, 224), "bilinear", 1.0, None, None, f"{kind}:{name}")


def _overridden(config: ModelInput, asked: dict, source: str) -> ModelInput:
    """The configuration with the recipe's values in place, the changed ones named in ``origin``."""
    try:
        given = PreprocessOptions.model_validate(asked).model_dump(exclude_none=True)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        problem = "unknown option" if error["type"] == "extra_forbidden" else error["msg"]
        raise ModelError(f"model {source!r}: preprocess.{where}: {problem}") from None
    if given.get("crop_pct", 1) > 1:
        raise ModelError(
            f"model {source!r}: preprocess.crop_pct {given['crop_pct']:g} would crop more than the resized image "
            "holds (the image smaller than the crop); give at most 1"
        )
    if "size" in given:
        size = given["size"]
        given["size"] = (size, size) if isinstance(size, int) else (size[0], size[1])
    for name in ("mean", "std"):
        if name in given:
            given[name] = tuple(float(v) for v in given[name])
    mean, std = given.get("mean", config.mean), given.get("std", config.std)
    if (mean is None) != (std is None) or (mean is not None and len(mean) != len(std)):
        raise ModelError(f"model {source!r}: preprocess.mean and std must give one value per channel, as many of each")
    return replace(config, **given, origin=f"{config.origin}, {', '.join(given)} from the recipe")


def _check_fixed_size(kind: str, name: str, options: dict, config: ModelInput, source: str) -> None:
    """A timm model whose pretrained configuration fixes its input size (a ViT's position embeddings) takes
    only that size, unless the recipe builds it for another (``img_size``)."""
    if kind != "timm":
        return
    import timm

    if not timm.is_model(name):
        return
    pretrained = timm.models.get_pretrained_cfg(name)
    built_for = options.get("img_size")
    fixed = tuple(pretrained.input_size[1:]) if built_for is None else _pair(built_for)
    if (pretrained.fixed_input_size or built_for is not None) and tuple(config.size) != fixed:
        raise ModelError(
            f"model {source!r}: preprocess.size {list(config.size)} does not fit, the model takes only "
            f"{fixed[0]}×{fixed[1]} images (a fixed input size); give that size, or build it for yours with "
            f"img_size: {config.size[0]}"
        )


def _pair(value: Any) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, int) else (int(value[0]), int(value[1]))


def model_input_of(source: str, options: dict) -> ModelInput | None:
    """:func:`resolve_model_input`, and for ``run:path`` the input images its card records."""
    if source.startswith("run:"):
        from protege.models.store import read_card, resolve_run_path

        stored = read_card(resolve_run_path(source)).preprocess.get("model_input")
        return ModelInput.from_card(stored) if stored is not None else None
    return resolve_model_input(source, options)
