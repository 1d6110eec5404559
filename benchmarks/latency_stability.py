"""Is the reported CPU latency stable? The same model measured twice (and more) in one process.

    python benchmarks/latency_stability.py [--rounds 5] [--threads 1]

Builds the demo's teacher (cnn2d, width 64, depth 3) and student (mlp, 24 hidden) for 8x8 digits,
measures each at batch 1 and 64 with the procedure report.json uses (protege.evaluate.cpu_latency_ms:
warm-up, then the median of short timed blocks), ``rounds`` times in a row, and prints the largest
relative difference between any two rounds. The target is under 15% for the first two.
"""

from __future__ import annotations

import argparse
import os
import platform

import torch

from protege.evaluate import cpu_latency_ms
from protege.models.builtin import BUILTIN

INPUT = (1, 8, 8)
MODELS = {"teacher cnn2d": ("cnn2d", {"width": 64, "depth": 3}), "student mlp": ("mlp", {"hidden": 24})}


def spread(values: list[float]) -> float:
    """Largest relative difference between two of ``values``: (max - min) / min."""
    return (max(values) - min(values)) / min(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as the report)")
    args = parser.parse_args()
    threads = args.threads
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"{platform.platform()}, {os.cpu_count()} CPUs, torch {torch.__version__}, {threads} thread(s)")
    print(f"load average (1, 5, 15 min): {load}; other processes on the CPU inflate and scatter wall-clock latency")
    print(f"{'model':16} {'batch':>5}  {'rounds (ms)':40} {'1st vs 2nd':>10} {'all':>8}")
    worst_pair = 0.0
    for title, (source, options) in MODELS.items():
        torch.manual_seed(0)
        model = BUILTIN[source](INPUT, 10, **options)
        for batch in (1, 64):
            times = [cpu_latency_ms(model, INPUT, batch, threads) for _ in range(args.rounds)]
            pair = spread(times[:2])
            worst_pair = max(worst_pair, pair)
            shown = ", ".join(f"{t:.4f}" for t in times)
            print(f"{title:16} {batch:>5}  {shown:40} {pair:>10.1%} {spread(times):>8.1%}")
    print(f"largest difference between two measurements of one model: {worst_pair:.1%} (target < 15%)")


if __name__ == "__main__":
    main()
