"""``imagefolder:path``: labelled images in one folder per class, as torchvision's ImageFolder lays them out.

``path/<class>/<image>``, or ``path/train/<class>/<image>`` with optional ``val/`` and ``test/`` beside
it to keep a split the data set defines. Images become float tensors in [0, 1], shape (channels,
height, width), held in memory like every other source (small data sets are what transfer learning
on 2 cores is for). All images must share one size and one colour mode, or the recipe names them.
"""

from __future__ import annotations

import typing
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
from pydantic import Field

from protege.data.raw import SOURCES, RawData
from protege.errors import DataError
from protege.options import MAX_INPUT_VALUES, MAX_SIDE, ImageMode

if TYPE_CHECKING:
    import PIL.Image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
MODES: tuple[str, ...] = typing.get_args(ImageMode)
Size = Annotated[list[Annotated[int, Field(ge=1, le=MAX_SIDE)]], Field(min_length=2, max_length=2)]
"""``size: [height, width]``, each side 1 to 8,192 pixels."""
MAX_IMAGE_PIXELS = MAX_SIDE * MAX_SIDE
"""The largest image read, 8192×8192 (Pillow's own limit is looser), checked from the header before decoding."""
SPLITS = ("train", "val", "test")
DEEP_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
"""16-bit (and 32-bit integer) grey images: their values reach 65,535, not 255."""
SIMILAR_MODE = {"1": "L", "I": "L", "I;16": "L", "F": "L", "LA": "RGBA", "P": "RGB", "CMYK": "RGB", "YCbCr": "RGB"}
"""Modes that become one of MODES when an image is read (palette images become RGB, 16-bit grey L...)."""


def load_image(file: Path, size: tuple[int, int] | None, mode: str | None) -> np.ndarray:
    """One image as float32 (channels, height, width) in [0, 1]; a file Pillow cannot decode is a DataError."""
    from PIL import Image

    with open_image(file) as image:
        channels = Image.getmodebands(mode or image.mode)
        if size is None and channels * image.width * image.height > MAX_INPUT_VALUES:
            raise DataError(
                f"{file} is {image.width}×{image.height} pixels, more values than a model takes "
                f"({MAX_INPUT_VALUES:,}); set options.size: [height, width] to resize every image"
            )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                image.load()
            deep = image.mode in DEEP_MODES
            if deep:  # 16-bit grey: scaled to [0, 1] by its own range, not clipped at 255 by convert("L")
                scaled = np.asarray(image.convert("I"), dtype=np.float32) / 65535.0
                image = Image.fromarray(scaled)  # float32 grey: mode F
            elif mode is not None and image.mode != mode:
                image = image.convert(mode)
            if size is not None and image.size != (size[1], size[0]):
                image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            array = np.asarray(image, dtype=np.float32) if deep else np.asarray(image, dtype=np.float32) / 255.0
        except Exception as exc:  # Pillow's decoders raise many kinds of errors on damaged files
            raise DataError(_unreadable(file, exc)) from None
    if deep and mode not in (None, "L"):  # a colour model reads the grey value in every channel
        array = np.repeat(array[..., None], Image.getmodebands(mode), axis=-1)
        if mode == "RGBA":
            array[..., 3] = 1.0
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


@contextmanager
def open_image(file: Path) -> Iterator[PIL.Image.Image]:
    """An image opened by Pillow (header only), refused before any pixel is decoded when it claims more
    than MAX_IMAGE_PIXELS (a decompression bomb, or a header that lies) or cannot be identified."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # damaged metadata (EXIF, TIFF tags) the pixels do not need
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(file)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DataError(
            f"{file}: its header claims more pixels than the {MAX_IMAGE_PIXELS:,} protege reads; shrink the image"
        ) from None
    except Exception as exc:  # Pillow's format plugins raise many kinds of errors on damaged headers
        raise DataError(_unreadable(file, exc)) from None
    with image:
        if image.width * image.height > MAX_IMAGE_PIXELS:
            raise DataError(
                f"{file}: its header claims {image.width}×{image.height} pixels, more than the "
                f"{MAX_IMAGE_PIXELS:,} protege reads; shrink the image"
            )
        yield image


def _unreadable(file: Path, exc: Exception) -> str:
    text = str(exc).strip()
    problem = text.splitlines()[0] if text else type(exc).__name__
    return f"{file}: not a readable image ({problem}); remove or replace the file"


def _class_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


@SOURCES.register("imagefolder")
def imagefolder(path: Path, size: Size | None = None, mode: ImageMode | None = None) -> RawData:
    """Images by class folder; ``size: [height, width]`` resizes them all, ``mode`` (L, RGB, RGBA) converts them."""
    split_roots = {name: path / name for name in SPLITS if (path / name).is_dir()}
    if split_roots and "train" not in split_roots:
        raise DataError(f"{path}: has {', '.join(split_roots)} folders but no train/ folder")
    roots = split_roots or {"train": path}
    class_names = [folder.name for folder in _class_folders(roots["train"])]
    if not class_names:
        raise DataError(f"{path}: no class folders; lay images out as {path}/<class>/<image file>")
    files: dict[str, list[tuple[Path, str]]] = {}
    for split, root in roots.items():
        found = [(file, folder.name) for folder in _class_folders(root) for file in _images(folder)]
        unknown = sorted({label for _, label in found} - set(class_names))
        if unknown:
            raise DataError(f"{root}/{unknown[0]}: class {unknown[0]!r} is not among the train/ classes")
        if not found:
            raise DataError(f"{root}: no image files ({', '.join(IMAGE_SUFFIXES)}) in its class folders")
        files[split] = found
    every = [file for found in files.values() for file, _ in found]
    target_size = tuple(size) if size is not None else None
    target_mode = mode or _common_mode(every)
    arrays: dict[str, np.ndarray] = {}
    first_shape: tuple[Path, tuple[int, ...]] | None = None
    for split, found in files.items():
        images = []
        for file, _ in found:
            image = load_image(file, target_size, target_mode)
            if first_shape is None:
                first_shape = (file, image.shape)
            elif image.shape != first_shape[1]:
                (h0, w0), (h, w) = first_shape[1][1:], image.shape[1:]
                raise DataError(
                    f"{file} is {w}×{h} pixels but {first_shape[0]} is {w0}×{h0}; set options.size: [height, width] "
                    "to resize every image"
                )
            images.append(image)
        arrays[split] = np.stack(images)
    labels = {split: np.array([label for _, label in found]) for split, found in files.items()}
    preprocess = {"image": {"size": list(first_shape[1][1:]), "mode": target_mode}} if first_shape else None
    return RawData(
        x=arrays["train"],
        y=labels["train"],
        x_val=arrays.get("val"),
        y_val=labels.get("val"),
        x_test=arrays.get("test"),
        y_test=labels.get("test"),
        class_names=None,
        preprocess=preprocess,
    )


imagefolder.takes_directory = True  # type: ignore[attr-defined]


def _common_mode(files: list[Path]) -> str:
    """The one colour mode all images share; mixed modes are an error that names the fix."""

    seen: dict[str, Path] = {}
    for file in files:
        with open_image(file) as image:
            image_mode = image.mode if image.mode in MODES else SIMILAR_MODE.get(image.mode, "RGB")
        seen.setdefault(image_mode, file)
        if len(seen) > 1:
            (mode_a, file_a), (mode_b, file_b) = list(seen.items())[:2]
            raise DataError(
                f"{file_b} has colour mode {mode_b} but {file_a} has {mode_a}; set options.mode: RGB (or L) "
                "to convert every image"
            )
    return next(iter(seen))
