"""scikit-learn's bundled handwritten digits (1,797 8×8 grey images, shipped inside the package, nothing
downloaded) written as two image folders, ``first/`` (digits 0-4) and ``second/`` (digits 5-9): a real
labelled image set to pretrain on one task and transfer to another (``recipes/images.yaml``).

    python -m protege.data.digits_folder runs/digits
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

HALVES = {"first": range(0, 5), "second": range(5, 10)}
"""Which digits each folder holds."""


def write_digits_folders(root: str | Path, scale: int = 1) -> dict[str, Path]:
    """``root/first/<digit>/<n>.png`` and ``root/second/...``: each image's 0-16 ink as 0-255 grey, ``scale``
    times as large (nearest neighbour, so the pixels stay the data set's); an existing folder is rewritten."""
    from PIL import Image
    from sklearn.datasets import load_digits

    bunch = load_digits()
    pixels = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    written = {}
    for half, digits in HALVES.items():
        folder = Path(root) / half
        for digit in digits:
            (folder / str(digit)).mkdir(parents=True, exist_ok=True)
        for n, (image, label) in enumerate(zip(pixels, bunch.target, strict=True)):
            if label in digits:
                picture = Image.fromarray(image, mode="L")
                if scale > 1:
                    picture = picture.resize((8 * scale, 8 * scale), Image.Resampling.NEAREST)
                picture.save(folder / str(label) / f"{n:04d}.png")
        written[half] = folder
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", help="folder to write first/ and second/ into")
    parser.add_argument("--scale", type=int, default=1, choices=range(1, 33), metavar="1-32", help="upscale factor")
    args = parser.parse_args(argv)
    for half, folder in write_digits_folders(args.root, args.scale).items():
        count = sum(1 for _ in folder.rglob("*.png"))
        print(f"{folder}: {count} images of digits {HALVES[half].start}-{HALVES[half].stop - 1}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
