"""How a distillation epoch grows with the transfer set and with the teacher, and what the cache costs.

    python benchmarks/scaling.py [--base 4000] [--epochs 3] [--rounds 3]

MNIST-1D. Part 1: epoch time of a cached-KD student over training sets of 1×, 4× and 16× ``--base``
examples (the extra examples are a transfer set of new samples). Part 2: cached versus online epoch
time for teachers of growing width. Part 3: the teacher cache's footprint, in memory (tensor bytes,
RSS growth) and memory-mapped on disk (file bytes). Times are medians of the epochs after the first, over
``--rounds`` repeats of each pair of runs (taken in turn, so a machine that changes speed slows both alike).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import resource
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

import torch

os.environ.setdefault("PROTEGE_QUIET", "1")

from protege.config import TrainConfig
from protege.data.build import load_data
from protege.distill.teacher import prepare_teacher
from protege.engine import fit
from protege.models.builtin import cnn1d, mlp
from protege.objectives import build_objective


def epoch_seconds(history: list[dict]) -> list[float]:
    """The epochs after the first (which pays for first-touch allocations)."""
    return [r["seconds"] for r in history[1:]]


def paired_medians(rounds: int, first, second) -> tuple[float, float]:
    """Median epoch of two kinds of run, each repeated ``rounds`` times in turn."""
    a: list[float] = []
    b: list[float] = []
    for _ in range(rounds):
        a += first()
        b += second()
    return statistics.median(a), statistics.median(b)


def rss_mib() -> float:
    """Current resident set size, from /proc (Linux), in MiB."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    largest = args.base * 16
    data = load_data("mnist1d", {"num_samples": largest * 5 // 4}, val_fraction=0)
    pool = data.train
    shape = data.input_shape
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=0.003)
    kd = lambda: build_objective([("kd", {"temperature": 2.0, "alpha": 0.5}, 1.0)])  # noqa: E731

    def student():
        torch.manual_seed(0)
        return mlp(shape, 10, hidden=256, residual=True)

    def run_plain(subset) -> list[float]:
        return epoch_seconds(fit(student(), subset, build_objective([("ce", {}, 1.0)]), config).history)

    def run_kd(subset, teacher, cache: str) -> list[float]:
        return epoch_seconds(fit(student(), subset, kd(), config, teacher=teacher, teacher_cache=cache).history)

    torch.manual_seed(0)
    teacher = cnn1d(shape, 10, width=64)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; batch {args.batch_size}, median of epochs 2..{args.epochs} "
        f"over {args.rounds} rounds\n"
    )

    print("| training examples | plain epoch (s) | cached KD epoch (s) | cached / plain | s per 1k examples |")
    print("|---|---|---|---|---|")
    for factor in (1, 4, 16):
        n = args.base * factor
        subset = type(pool)(pool.x[:n], pool.y[:n])
        plain, cached = paired_medians(
            args.rounds, partial(run_plain, subset), partial(run_kd, subset, teacher, "memory")
        )
        print(f"| {n:,} ({factor}×) | {plain:.3f} | {cached:.3f} | {cached / plain:.2f} | {1000 * cached / n:.4f} |")

    print("\n| teacher (cnn1d width) | teacher params | cached KD epoch (s) | online KD epoch (s) | online / cached |")
    print("|---|---|---|---|---|")
    subset = type(pool)(pool.x[: args.base * 4], pool.y[: args.base * 4])
    for width in (16, 64, 256):
        torch.manual_seed(0)
        wide = cnn1d(shape, 10, width=width)
        params = sum(p.numel() for p in wide.parameters())
        cached, online = paired_medians(
            args.rounds, partial(run_kd, subset, wide, "memory"), partial(run_kd, subset, wide, "off")
        )
        print(f"| {width} | {params:,} | {cached:.3f} | {online:.3f} | {online / cached:.2f} |")

    print("\n| cache | examples | tables | bytes | RSS growth (MiB) | build time (s) |")
    print("|---|---|---|---|---|---|")
    device = torch.device("cpu")
    for layers in ((), ("features.3",)):
        what = "logits" if not layers else "logits + features.3"
        before = rss_mib()
        start = time.perf_counter()
        memory = prepare_teacher(teacher, pool, "memory", device, contextlib.nullcontext, layers=layers)
        built = time.perf_counter() - start
        size = sum(t.numel() * t.element_size() for t in memory.tables.values())
        print(f"| memory | {len(pool):,} | {what} | {size:,} | {rss_mib() - before:.1f} | {built:.2f} |")
        del memory
        with tempfile.TemporaryDirectory() as tmp:
            before = rss_mib()
            start = time.perf_counter()
            disk = prepare_teacher(teacher, pool, "disk", device, contextlib.nullcontext, Path(tmp), layers)
            built = time.perf_counter() - start
            size = sum(f.stat().st_size for f in Path(tmp).glob("*.f32"))
            print(f"| disk (memmap) | {len(pool):,} | {what} | {size:,} | {rss_mib() - before:.1f} | {built:.2f} |")
            del disk


if __name__ == "__main__":
    main()
