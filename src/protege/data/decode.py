"""Reading one image file (or its bytes held in a data set): its header checked before any pixel is decoded,
then float32 pixels in [0, 1], (channels, height, width), resized and converted as the recipe asks. Every
loading mode reads through here."""

from __future__ import annotations

import io
import typing
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from protege.errors import DataError
from protege.options import MAX_INPUT_VALUES, MAX_SIDE, ImageMode

if TYPE_CHECKING:
    import PIL.Image

MODES: tuple[str, ...] = typing.get_args(ImageMode)
MAX_IMAGE_PIXELS = MAX_SIDE * MAX_SIDE
"""The largest image read, 8192×8192 (Pillow's own limit is looser), checked from the header before decoding."""
DEEP_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
"""16-bit (and 32-bit integer) grey images: their values reach 65,535, not 255."""
SIMILAR_MODE = {"1": "L", "I": "L", "I;16": "L", "F": "L", "LA": "RGBA", "P": "RGB", "CMYK": "RGB", "YCbCr": "RGB"}
"""Modes that become one of MODES when an image is read (palette images become RGB, 16-bit grey L...)."""


@dataclass(frozen=True)
class EncodedImage:
    """An image file's bytes held inside a data set (a Hugging Face ``Image`` column), decoded exactly as the
    same file on disk would be; ``name`` says which row it is in errors."""

    data: bytes
    name: str

    def __str__(self) -> str:
        return self.name


ImageFile = Path | EncodedImage
"""What an image is read from: a file, or a file's bytes held in a data set."""


def load_image(file: ImageFile, size: tuple[int, int] | None, mode: str | None) -> np.ndarray:
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
            raise DataError(unreadable(file, exc)) from None
    if deep and mode not in (None, "L"):  # a colour model reads the grey value in every channel
        array = np.repeat(array[..., None], Image.getmodebands(mode), axis=-1)
        if mode == "RGBA":
            array[..., 3] = 1.0
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


@contextmanager
def open_image(file: ImageFile) -> Iterator[PIL.Image.Image]:
    """An image opened by Pillow (header only), refused before any pixel is decoded when it claims more
    than MAX_IMAGE_PIXELS (a decompression bomb, or a header that lies) or cannot be identified."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # damaged metadata (EXIF, TIFF tags) the pixels do not need
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(file.data) if isinstance(file, EncodedImage) else file)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DataError(
            f"{file}: its header claims more pixels than the {MAX_IMAGE_PIXELS:,} protege reads; shrink the image"
        ) from None
    except Exception as exc:  # Pillow's format plugins raise many kinds of errors on damaged headers
        raise DataError(unreadable(file, exc)) from None
    with image:
        if image.width * image.height > MAX_IMAGE_PIXELS:
            raise DataError(
                f"{file}: its header claims {image.width}×{image.height} pixels, more than the "
                f"{MAX_IMAGE_PIXELS:,} protege reads; shrink the image"
            )
        yield image


def unreadable(file: ImageFile, exc: Exception) -> str:
    text = str(exc).strip()
    problem = text.splitlines()[0] if text else type(exc).__name__
    return f"{file}: not a readable image ({problem}); remove or replace the file"
