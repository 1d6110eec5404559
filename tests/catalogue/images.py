"""Image folders read batch by batch (``options.load: stream`` / ``cache``): bad option values, and what
a streamed folder cannot do yet, each refused before training."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.catalogue import recipe

TEACHER = {"model": {"source": "mlp", "hidden": 8}, "train": {"epochs": 1, "batch_size": 256}}


def streamed_folder(tmp: Path, options: dict | None = None, odd: bytes | None = None, **changes) -> list[str]:
    """Two classes of ten 4×4 grey PNGs read with ``options`` (stream by default), plus an ``odd`` file."""
    from PIL import Image

    for label in ("a", "b"):
        (tmp / "images" / label).mkdir(parents=True)
        for i in range(10):
            Image.new("L", (4, 4), 20 * i).save(tmp / "images" / label / f"{i}.png")
    if odd is not None:
        (tmp / "images" / "b" / "odd.png").write_bytes(odd)
    data = {"source": f"imagefolder:{tmp / 'images'}", "options": options or {"load": "stream", "num_workers": 0}}
    return recipe(tmp, {"data": data, **changes})


def cache_in_a_file(tmp: Path) -> list[str]:
    (tmp / "a-file").write_text("not a folder\n")
    return streamed_folder(tmp, {"load": "cache", "num_workers": 0, "cache_dir": str(tmp / "a-file")})


STREAM = {"load": "stream", "num_workers": 0}
CASES: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "unknown loading mode": (
        lambda t: streamed_folder(t, {"load": "disk"}),
        "data source 'imagefolder': load: Input should be 'auto', 'memory', 'stream' or 'cache' (got 'disk')",
    ),
    "negative number of workers": (
        lambda t: streamed_folder(t, {"load": "stream", "num_workers": -1}),
        "data source 'imagefolder': num_workers: Input should be greater than or equal to 0",
    ),
    "too many workers": (
        lambda t: streamed_folder(t, {"load": "stream", "num_workers": 1000}),
        "data source 'imagefolder': num_workers: Input should be less than or equal to 64",
    ),
    "corrupt file in a streamed folder": (
        lambda t: streamed_folder(t, odd=b"\x89PNG but not really"),
        "odd.png: not a readable image (cannot identify image file",
    ),
    "corrupt file in a cached folder": (
        lambda t: streamed_folder(t, {"load": "cache", "num_workers": 0, "cache_dir": str(t / "c")}, b"GIF89a!"),
        "odd.png: not a readable image",
    ),
    "prepared cache in a file, not a folder": (cache_in_a_file, "cannot write the prepared image cache in"),
    "standardised streamed images": (
        lambda t: streamed_folder(t, {**STREAM}, **{"data.standardize": True}),
        "standardize needs every image in memory (images are already in [0, 1]); set standardize: false",
    ),
    "transfer set joined to streamed images": (
        lambda t: streamed_folder(
            t, teacher=TEACHER, **{"student.objective": {"name": "kd"}, "transfer": {"source": "mixup"}}
        ),
        "a transfer set needs the images in memory, and data.options.load is stream; set data.options.load: memory",
    ),
    "streamed transfer set": (
        lambda t: streamed_folder(
            t,
            {"load": "memory"},
            teacher=TEACHER,
            **{"student.objective": {"name": "kd"}},
            transfer={"source": f"imagefolder:{t / 'images'}", "options": STREAM},
        ),
        "a transfer set is held in memory, and its images would be read from stream; set transfer.options.load",
    ),
    "continual block over streamed images": (
        lambda t: streamed_folder(
            t, continual={"scenario": "class_incremental", "experiences": 2, "strategies": ["naive"]}
        ),
        "the continual block needs the images in memory, and data.options.load is stream",
    ),
}
