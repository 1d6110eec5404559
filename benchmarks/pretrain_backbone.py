"""Pretrain a small timm backbone on one image data set and save it as a protege run, the pretrained source
that ``recipes/images.yaml`` transfers to another: offline there are no hub weights, so this stands in for
them. By default timm's resnet18 learns digits 0-4 of scikit-learn's bundled digits
(protege.data.digits_folder) at 16×16, with its pretrained configuration's bicubic resize, 0.95 crop and
ImageNet mean/std (recorded in its card, so the recipe reads the new images the same way).

    python benchmarks/pretrain_backbone.py [--out runs/pretrained-digits] [--data runs/digits/first]

Online, a user skips this and starts from real pretrained weights (``timm:resnet50.a1_in1k``,
``timm:resnet18.a1_in1k``): README "An image recipe".
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from protege.data.digits_folder import write_digits_folders
from protege.pipeline import run_recipe
from protege.recipe_reader import recipe_from_dict


def pretraining_recipe(data: Path, model: str, size: int, epochs: int, seed: int) -> dict:
    """A plain supervised run of ``model`` (trained from scratch, at ``size``×``size``) on the folder ``data``."""
    return {
        "name": "pretrained-digits",
        "seed": seed,
        "data": {"source": f"imagefolder:{data}", "options": {"mode": "RGB"}, "val_fraction": 0.1},
        "student": {
            "model": {"source": model, "pretrained": False, "preprocess": {"size": size}},
            "train": {
                "epochs": epochs,
                "lr": 0.003,
                "batch_size": 64,
                "augment": [{"name": "random_resized_crop", "scale": [0.6, 1.0], "ratio": [0.9, 1.1]}],
            },
        },
        "evaluate": {"latency": False},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="an image folder (default: digits 0-4, written)")
    parser.add_argument("--model", default="timm:resnet18")
    parser.add_argument("--size", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/pretrained-digits"))
    args = parser.parse_args(argv)
    data = args.data or write_digits_folders(Path("runs/digits"))["first"]
    recipe = recipe_from_dict(pretraining_recipe(data, args.model, args.size, args.epochs, args.seed))
    started = time.perf_counter()
    result = run_recipe(recipe, args.out, overwrite=True)
    accuracy = result.report["models"]["student"]["accuracy"]
    print(f"pretrained {args.model} on {data}: test accuracy {accuracy:.3f} in {time.perf_counter() - started:.0f} s")
    print(f"its weights: {args.out}/student/model/model.safetensors (the source recipes/images.yaml transfers)")


if __name__ == "__main__":
    main()
