"""int8 after training: MNIST-1D MLPs exported as float and int8 ONNX, accuracy and latency side by side.

    python benchmarks/quantize.py [--hidden 256 1024] [--epochs 20] [--threads 1]

For each hidden width, trains the MNIST-1D reference MLP (2 residual layers; 4000 train / 1000 test
examples) with cross-entropy, then runs ``protege export --quantize int8`` on it (onnxruntime dynamic
quantization of the Linear layers). The float and the int8 ONNX file are both scored on the test split
and timed at batch 1 and 64 in onnxruntime (the median of timed blocks, the model alone) by the export
itself; the table is what its measurements JSON holds. ``--max-drop`` is 1 here so that every width is
reported; the CLI's default (0.01) would refuse a larger drop.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
from pathlib import Path

import onnxruntime
import torch

from protege.pipeline import run_recipe
from protege.quantize import export_int8
from protege.recipe_reader import recipe_from_dict


def train(hidden: int, epochs: int, folder: Path) -> Path:
    """A run of the MNIST-1D MLP of width ``hidden`` trained alone; returns the run directory."""
    raw = {
        "name": f"mnist1d-mlp{hidden}",
        "seed": 0,
        "data": {"source": "mnist1d", "val_fraction": 0},
        "student": {
            "model": {"source": "mlp", "hidden": hidden, "layers": 2, "residual": True},
            "train": {"epochs": epochs, "lr": 0.003, "batch_size": 100},
        },
        "evaluate": {"latency": False, "html": False},
    }
    return run_recipe(recipe_from_dict(raw), folder / f"mlp{hidden}").run_dir


def row(hidden: int, model: str, measures: dict) -> str:
    entry = measures[model]
    latency = entry["latency_ms"]
    return (
        f"| mlp {hidden} | {model} | {entry['accuracy']:.2%} | {latency['1']:.4f} ms | {latency['64']:.4f} ms | "
        f"{entry['file_bytes'] / 1e3:,.1f} kB |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 1024], help="MLP widths to train")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads for latency (default 1)")
    args = parser.parse_args()
    print(f"{platform.platform()}, {os.cpu_count()} CPUs, torch {torch.__version__}, onnxruntime "
          f"{onnxruntime.__version__}, {args.threads} thread(s), load {os.getloadavg()[0]:.1f}")  # fmt: skip
    lines = ["| model | weights | test accuracy | latency b1 | latency b64 | file |", "|---|---|---|---|---|---|"]
    summary = []
    with tempfile.TemporaryDirectory(prefix="protege-quantize-") as folder:
        for hidden in args.hidden:
            run = train(hidden, args.epochs, Path(folder))
            measures = export_int8(run, max_drop=1.0, threads=args.threads).measures
            lines += [row(hidden, "float", measures), row(hidden, "int8", measures)]
            plain, int8 = measures["float"]["latency_ms"], measures["int8"]["latency_ms"]
            summary.append(
                f"mlp {hidden}: accuracy drop {measures['drop']:+.2%}, top-1 agreement {measures['agreement']:.1%}, "
                f"float ÷ int8 latency b1 {plain['1'] / int8['1']:.2f}×, b64 {plain['64'] / int8['64']:.2f}×"
            )
    print("\n".join([*lines, "", *summary]))


if __name__ == "__main__":
    main()
