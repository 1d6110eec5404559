"""Training throughput (examples/s) of a mid-size image pair on a GPU: timm ResNet-50 teacher, ResNet-18 student.

    python benchmarks/gpu_throughput.py [--examples 4096] [--image-size 224] [--batch-size 128] [--epochs 3]

Random-label 3×H×W data held in memory (random weights: speed does not depend on them). For each setting of
precision (fp32, bf16 autocast), memory layout (channels_last on/off) and ``torch.compile`` (off/on), it trains
the student alone, then distils it from the teacher with the teacher cache and with the teacher online, through
protege's ``fit``; it reports examples/s over the epochs after the first (the first pays for compilation and
cuDNN autotuning) and the peak GPU memory. Without a GPU it runs on the CPU, for a smoke test at a small size:

    python benchmarks/gpu_throughput.py --examples 64 --image-size 32 --batch-size 32 --epochs 2 --quick
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import statistics

import torch

os.environ.setdefault("PROTEGE_QUIET", "1")

from protege.config import TrainConfig
from protege.data.dataset import ArrayDataset
from protege.engine import fit
from protege.models.vision import build_timm
from protege.objectives import build_objective

VARIANTS = ("student alone", "distill, teacher cached", "distill, teacher online")


def examples_per_second(history: list[dict], examples: int) -> float:
    """Examples over the median epoch after the first."""
    return examples / statistics.median(r["seconds"] for r in history[1:])


def peak_memory_gib() -> float | None:
    if not torch.cuda.is_available():
        return None
    return torch.cuda.max_memory_allocated() / 1024**3


def run(args: argparse.Namespace, data: ArrayDataset, precision: str, channels_last: bool, compile_: bool) -> dict:
    """Examples/s and peak memory of the three variants under one setting."""
    shape = tuple(data.x.shape[1:])
    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=1e-3,
        mixed_precision=precision,
        channels_last=channels_last,
        compile=compile_,
    )
    teacher = build_timm(args.teacher, shape, args.classes, pretrained=False)
    kd = build_objective([("kd", {"temperature": 4.0, "alpha": 0.9}, 1.0)])
    results = {}
    for variant in VARIANTS:
        torch.manual_seed(0)
        student = build_timm(args.student, shape, args.classes, pretrained=False)
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        if variant == "student alone":
            outcome = fit(student, data, build_objective([("ce", {}, 1.0)]), config)
        else:
            cache = "memory" if variant.endswith("cached") else "off"
            outcome = fit(student, data, kd, config, teacher=teacher, teacher_cache=cache)
        results[variant] = (examples_per_second(outcome.history, len(data)), peak_memory_gib())
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=4096)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--teacher", default="resnet50")
    parser.add_argument("--student", default="resnet18")
    parser.add_argument("--quick", action="store_true", help="only fp32 without channels_last or compile")
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first epoch is not timed")

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(args.examples, 3, args.image_size, args.image_size, generator=generator)
    y = torch.randint(0, args.classes, (args.examples,), generator=generator)
    data = ArrayDataset(x, y)

    gpu = torch.cuda.is_available()
    device = torch.cuda.get_device_name() if gpu else f"CPU ({platform.machine()}, {os.cpu_count()} cores)"
    print(f"device: {device}; torch {torch.__version__}")
    print(
        f"data: {args.examples} random-label images 3×{args.image_size}×{args.image_size}, {args.classes} classes; "
        f"batch {args.batch_size}; {args.epochs} epochs (median of the last {args.epochs - 1}); "
        f"teacher timm {args.teacher}, student timm {args.student}, random weights; KD T=4, alpha 0.9"
    )
    precisions = ["no", "bf16"] if gpu and torch.cuda.is_bf16_supported() else ["no"]
    settings = (
        [("no", False, False)] if args.quick else list(itertools.product(precisions, (False, True), (False, True)))
    )
    print("| precision | channels_last | compile | " + " | ".join(VARIANTS) + " |")
    print("|---|---|---|" + "---|" * len(VARIANTS))
    for precision, channels_last, compile_ in settings:
        results = run(args, data, precision, channels_last, compile_)
        cells = []
        for variant in VARIANTS:
            rate, memory = results[variant]
            cells.append(f"{rate:,.0f} ex/s" + (f", {memory:.1f} GiB" if memory is not None else ""))
        label = "fp32" if precision == "no" else precision
        print(
            f"| {label} | {'on' if channels_last else 'off'} | {'on' if compile_ else 'off'} | "
            + " | ".join(cells)
            + " |"
        )


if __name__ == "__main__":
    main()
