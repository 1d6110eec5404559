"""imagefolder at real size (issue 13): images per second of protege's streamed loader, of torchvision's
ImageFolder + DataLoader (same workers, resize + to-tensor, batch size) and of protege's prepared cache;
then the peak memory of a one-epoch `protege run` of a tiny CNN at two folder sizes, streamed, cached and
in memory.

    python benchmarks/data_loading.py                       # 2,000 files for speed, 5,000 and 20,000 for memory
    python benchmarks/data_loading.py --files 500 --memory-sizes 500 1000   # a quick look

Peak memory is the largest sum of proportional set sizes (PSS: shared pages split between the processes
that map them) over the run's process tree, DataLoader workers included, sampled every 50 ms.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import yaml

CLASSES = 10


def make_folder(root: Path, count: int, side: int) -> Path:
    """``count`` RGB JPEGs of side×side in CLASSES class folders, a bright channel per class (so a CNN learns)."""
    rng = np.random.default_rng(0)
    from PIL import Image

    for i in range(count):
        label = i % CLASSES
        folder = root / f"class_{label}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 120, (side, side, 3), dtype=np.uint8)
        pixels[..., label % 3] += 60 + 13 * label
        Image.fromarray(pixels).save(folder / f"{i:06d}.jpg", quality=90)
    return root


def images_per_second(batches, count: int) -> float:
    """One pass over ``batches`` (the first batch's start-up included), as images per second."""
    started = time.perf_counter()
    seen = 0
    for batch in batches:
        seen += len(batch["x"] if isinstance(batch, dict) else batch[0])
    assert seen == count, (seen, count)
    return count / (time.perf_counter() - started)


def protege_rate(root: Path, load: str, workers: int, batch: int, side: int, cache_dir: Path) -> tuple[float, float]:
    """Images per second of one shuffled epoch through protege's loader, and the seconds loading took
    (listing and header checks; for ``cache`` also preparing it when it is not there yet)."""
    from protege.data.build import load_data
    from protege.data.dataset import batch_loader

    options = {"load": load, "num_workers": workers, "size": [side, side], "cache_dir": str(cache_dir)}
    started = time.perf_counter()
    data = load_data(f"imagefolder:{root}", options, val_fraction=0.0, test_fraction=0.05, seed=0)
    setup = time.perf_counter() - started
    return images_per_second(batch_loader(data.train, batch, shuffle=True, seed=0), len(data.train)), setup


def torchvision_rate(root: Path, workers: int, batch: int, side: int) -> float:
    """torchvision's ImageFolder and DataLoader over the same files: resize, to tensor, shuffled."""
    import torch
    from torchvision import datasets, transforms

    transform = transforms.Compose([transforms.Resize((side, side)), transforms.ToTensor()])
    folder = datasets.ImageFolder(str(root), transform=transform)
    loader = torch.utils.data.DataLoader(folder, batch_size=batch, shuffle=True, num_workers=workers)
    return images_per_second(loader, len(folder))


def peak_memory(recipe: dict, work: Path) -> tuple[float, float]:
    """Peak PSS (MiB) of the process tree of `protege run` on ``recipe``, and its wall seconds."""
    path = work / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    command = [sys.executable, "-m", "protege.cli", "run", str(path), "-o", str(work / "run"), "--overwrite"]
    started = time.perf_counter()
    child = subprocess.Popen(command, env={**os.environ, "PROTEGE_QUIET": "1"}, stdout=subprocess.DEVNULL)
    process, peak = psutil.Process(child.pid), 0
    while child.poll() is None:
        total = 0
        try:
            for p in [process, *process.children(recursive=True)]:
                total += p.memory_full_info().pss
        except psutil.Error:  # a worker that just ended
            pass
        peak = max(peak, total)
        time.sleep(0.05)
    if child.returncode != 0:
        raise SystemExit(f"protege run failed ({child.returncode}) on {recipe['data']}")
    return peak / 1024**2, time.perf_counter() - started


def training_recipe(root: Path, load: str, workers: int, cache_dir: Path) -> dict:
    """One epoch of a tiny CNN, no teacher, no validation split, no latency measurement."""
    options = {"load": load, "num_workers": workers, "cache_dir": str(cache_dir)}
    return {
        "name": "data-loading",
        "seed": 0,
        "data": {"source": f"imagefolder:{root}", "options": options, "val_fraction": 0.0, "test_fraction": 0.05},
        "student": {"model": {"source": "cnn2d", "width": 4, "depth": 1}, "train": {"epochs": 1, "batch_size": 128}},
        "evaluate": {"latency": False, "html": False},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000, help="images for the speed comparison")
    parser.add_argument("--memory-sizes", type=int, nargs="+", default=[5000, 20000])
    parser.add_argument("--side", type=int, default=64)
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    os.environ.setdefault("PROTEGE_QUIET", "1")
    with tempfile.TemporaryDirectory(prefix="protege-data-loading-") as tmp:
        work = Path(tmp)
        speed(args, work)
        memory(args, work)


def speed(args: argparse.Namespace, work: Path) -> None:
    root = make_folder(work / f"speed_{args.files}", args.files, args.side)
    cache_dir = work / "cache"
    print(f"## {args.files:,} JPEGs of {args.side}×{args.side}, batch {args.batch_size}, {args.workers} workers\n")
    print("| loader | images/s | set-up s |\n|---|---:|---:|")
    rate, setup = protege_rate(root, "stream", args.workers, args.batch_size, args.side, cache_dir)
    vision = torchvision_rate(root, args.workers, args.batch_size, args.side)
    _, built = protege_rate(root, "cache", args.workers, args.batch_size, args.side, cache_dir)  # prepares it
    cached, reuse = protege_rate(root, "cache", args.workers, args.batch_size, args.side, cache_dir)
    print(f"| protege, streamed from files | {rate:,.0f} | {setup:.2f} |")
    print(f"| torchvision ImageFolder + DataLoader | {vision:,.0f} | – |")
    print(f"| protege, prepared cache (preparing it: {built:.1f} s) | {cached:,.0f} | {reuse:.2f} |")
    print(f"\nstreamed / torchvision: {rate / vision:.2f}×; cache / torchvision: {cached / vision:.2f}×\n", flush=True)


def memory(args: argparse.Namespace, work: Path) -> None:
    print("## peak memory (PSS of the process tree) of one epoch of `protege run`, tiny CNN\n")
    print("| files | load | peak MiB | wall s |\n|---:|---|---:|---:|")
    for count in args.memory_sizes:
        root = make_folder(work / f"memory_{count}", count, args.side)
        for load in ("stream", "cache", "memory"):
            cache_dir = work / "cache"
            peak, wall = peak_memory(training_recipe(root, load, args.workers, cache_dir), work)
            print(f"| {count:,} | {load} | {peak:,.0f} | {wall:.1f} |", flush=True)


if __name__ == "__main__":
    main()
