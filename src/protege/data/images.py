"""``imagefolder:path``: labelled images in one folder per class, as torchvision's ImageFolder lays them out.

``path/<class>/<image>``, or ``path/train/<class>/<image>`` with optional ``val/`` and ``test/`` beside
it to keep a split the data set defines. Images become float tensors in [0, 1], shape (channels,
height, width). ``load`` says where they live: ``memory`` decodes every image up front, ``stream``
decodes each batch in DataLoader workers, ``cache`` reads a uint8 copy prepared once, and ``auto``
(the default) keeps a folder in memory up to 1 GiB of float32 pixels and streams a larger one. All
images must share one size and one colour mode, or the recipe names them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from protege.console import log
from protege.data.decode import MAX_INPUT_VALUES, MODES, SIMILAR_MODE, ImageFile, load_image, open_image
from protege.data.image_cache import prepared_cache
from protege.data.raw import SOURCES, RawData
from protege.data.streamed import AUTO_MEMORY_BYTES, ImageFolder, default_workers
from protege.errors import DataError
from protege.options import MAX_SIDE, ImageMode

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
Size = Annotated[list[Annotated[int, Field(ge=1, le=MAX_SIDE)]], Field(min_length=2, max_length=2)]
"""``size: [height, width]``, each side 1 to 8,192 pixels."""
Load = Literal["auto", "memory", "stream", "cache"]
Workers = Annotated[int, Field(ge=0, le=64)]
"""``num_workers``: DataLoader worker processes that decode streamed images (0: in the training process)."""
SPLITS = ("train", "val", "test")
Listed = dict[str, list[tuple[Path, str]]]
"""Each split's (file, class name) pairs, in sorted order."""
Header = tuple[ImageFile, str, int, int]
"""A file, the colour mode it is read in, its width and height: what its header says."""


def _class_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


@SOURCES.register("imagefolder")
def imagefolder(
    path: Path,
    size: Size | None = None,
    mode: ImageMode | None = None,
    load: Load = "auto",
    num_workers: Workers | None = None,
    cache_dir: str | None = None,
) -> RawData:
    """Images by class folder; ``size: [height, width]`` resizes them all, ``mode`` (L, RGB, RGBA) converts
    them, ``load`` (auto, memory, stream, cache) says where they are held, ``num_workers`` how many
    processes decode a streamed folder, ``cache_dir`` where a prepared cache goes (``PROTEGE_CACHE_DIR``)."""
    listed = _listed(path)
    files = {split: [file for file, _ in found] for split, found in listed.items()}
    labels = {split: np.array([label for _, label in found]) for split, found in listed.items()}
    every = [file for found in files.values() for file in found]
    target_size = (size[0], size[1]) if size is not None else None
    workers = default_workers() if num_workers is None else num_workers
    chosen, why = choose_load(load, every, target_size, mode)
    if chosen == "memory":
        log(f"imagefolder: {len(every):,} images decoded into memory ({why})")
        return decoded_splits(files, labels, target_size, mode or one_mode(read_headers(every)))
    headers = read_headers(every)  # every file's header before any training: a damaged one is named now
    folder = ImageFolder(
        tuple(every), target_size or one_size(headers), mode or one_mode(headers), workers, root=path.resolve()
    )
    if chosen == "cache":
        folder = prepared_cache(folder, cache_dir)
    if folder.cache is not None:
        log(f"imagefolder: {len(every):,} images read from the prepared cache {folder.cache} ({why})")
    else:
        log(f"imagefolder: {len(every):,} images read from the files by {workers or 'no'} worker processes ({why})")
    return position_splits(labels, folder)


imagefolder.takes_directory = True  # type: ignore[attr-defined]


def _listed(path: Path) -> Listed:
    """The folder's image files per split, each with its class folder's name; the classes are train/'s."""
    split_roots = {name: path / name for name in SPLITS if (path / name).is_dir()}
    if split_roots and "train" not in split_roots:
        raise DataError(f"{path}: has {', '.join(split_roots)} folders but no train/ folder")
    roots = split_roots or {"train": path}
    class_names = [folder.name for folder in _class_folders(roots["train"])]
    if not class_names:
        raise DataError(f"{path}: no class folders; lay images out as {path}/<class>/<image file>")
    files: Listed = {}
    for split, root in roots.items():
        found = [(file, folder.name) for folder in _class_folders(root) for file in _images(folder)]
        unknown = sorted({label for _, label in found} - set(class_names))
        if unknown:
            raise DataError(f"{root}/{unknown[0]}: class {unknown[0]!r} is not among the train/ classes")
        if not found:
            raise DataError(f"{root}: no image files ({', '.join(IMAGE_SUFFIXES)}) in its class folders")
        files[split] = found
    return files


def choose_load(
    load: str, every: Sequence[ImageFile], size: tuple[int, int] | None, mode: str | None
) -> tuple[str, str]:
    """The loading mode and why: the one the recipe names, or for ``auto`` memory while the decoded float32
    pixels (from the first header, as all images share a size) take at most AUTO_MEMORY_BYTES."""
    if load != "auto":
        return load, f"options.load: {load}"
    from PIL import Image

    with open_image(every[0]) as image:
        height, width = size or (image.height, image.width)
        channels = Image.getmodebands(mode or _read_mode(image.mode))
    decoded = len(every) * channels * height * width * 4
    limit = f"{AUTO_MEMORY_BYTES / 1024**3:g} GiB"
    if decoded <= AUTO_MEMORY_BYTES:
        return "memory", f"options.load: auto; {decoded / 1024**2:,.1f} MiB as float32, at most {limit}"
    return "stream", f"options.load: auto; {decoded / 1024**3:,.1f} GiB as float32, more than {limit}"


def decoded_splits(
    files: dict[str, Sequence[ImageFile]], labels: dict[str, np.ndarray], size: tuple[int, int] | None, mode: str
) -> RawData:
    """Every image decoded into one float32 array per split, beside that split's ``labels``."""
    arrays: dict[str, np.ndarray] = {}
    first_shape: tuple[ImageFile, tuple[int, ...]] | None = None
    for split, found in files.items():
        images = []
        for file in found:
            image = load_image(file, size, mode)
            if first_shape is None:
                first_shape = (file, image.shape)
            elif image.shape != first_shape[1]:
                (h0, w0), (h, w) = first_shape[1][1:], image.shape[1:]
                raise DataError(_size_mismatch(file, (w, h), first_shape[0], (w0, h0)))
            images.append(image)
        arrays[split] = np.stack(images)
    preprocess = {"image": {"size": list(first_shape[1][1:]), "mode": mode}} if first_shape else None
    return RawData(
        x=arrays["train"],
        y=labels["train"],
        x_val=arrays.get("val"),
        y_val=labels.get("val"),
        x_test=arrays.get("test"),
        y_test=labels.get("test"),
        preprocess=preprocess,
    )


def position_splits(labels: dict[str, np.ndarray], folder: ImageFolder) -> RawData:
    """Each split as positions in the folder's file list (the splits' files one after another, in the order
    of ``labels``), which the loader turns into streamed datasets."""
    positions, start = {}, 0
    for split, found in labels.items():
        positions[split] = np.arange(start, start + len(found), dtype=np.int64)
        start += len(found)
    return RawData(
        x=positions["train"],
        y=labels["train"],
        x_val=positions.get("val"),
        y_val=labels.get("val"),
        x_test=positions.get("test"),
        y_test=labels.get("test"),
        preprocess={"image": {"size": list(folder.size), "mode": folder.mode}},
        images=folder,
    )


def _read_mode(mode: str) -> str:
    return mode if mode in MODES else SIMILAR_MODE.get(mode, "RGB")


def read_headers(files: Sequence[ImageFile]) -> list[Header]:
    """Every file's header (no pixel decoded): an unreadable one, or one too large for a model without
    ``options.size``, is an error that names the file."""
    headers = []
    for file in files:
        with open_image(file) as image:
            headers.append((file, _read_mode(image.mode), image.width, image.height))
    return headers


def one_mode(headers: list[Header]) -> str:
    """The one colour mode all images share; mixed modes are an error that names the fix."""
    seen: dict[str, ImageFile] = {}
    for file, image_mode, _, _ in headers:
        seen.setdefault(image_mode, file)
        if len(seen) > 1:
            (mode_a, file_a), (mode_b, file_b) = list(seen.items())[:2]
            raise DataError(
                f"{file_b} has colour mode {mode_b} but {file_a} has {mode_a}; set options.mode: RGB (or L) "
                "to convert every image"
            )
    return next(iter(seen))


def one_size(headers: list[Header]) -> tuple[int, int]:
    """The (height, width) all images share, without ``options.size``; one that differs, or one with more
    values than a model takes, is an error that names the fix."""
    from PIL import Image

    first, _, w0, h0 = headers[0]
    for file, image_mode, w, h in headers:
        if Image.getmodebands(image_mode) * w * h > MAX_INPUT_VALUES:
            raise DataError(
                f"{file} is {w}×{h} pixels, more values than a model takes ({MAX_INPUT_VALUES:,}); set "
                "options.size: [height, width] to resize every image"
            )
        if (w, h) != (w0, h0):
            raise DataError(_size_mismatch(file, (w, h), first, (w0, h0)))
    return h0, w0


def _size_mismatch(file: ImageFile, size: tuple[int, int], first: ImageFile, first_size: tuple[int, int]) -> str:
    return (
        f"{file} is {size[0]}×{size[1]} pixels but {first} is {first_size[0]}×{first_size[1]}; set "
        "options.size: [height, width] to resize every image"
    )
