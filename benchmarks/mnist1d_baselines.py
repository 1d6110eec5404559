"""Reproduce the MNIST-1D baselines (CNN ~94%, MLP ~68%) and the distilled MLP, per seed.

    python benchmarks/mnist1d_baselines.py --seeds 0 1 2

Runs recipes/mnist1d.yaml once per seed into a temporary directory and prints a markdown table of
test accuracy and training time for the teacher, the MLP alone and the distilled MLP.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

os.environ.setdefault("PROTEGE_QUIET", "1")

from protege.pipeline import run_recipe
from protege.recipe_reader import load_recipe

RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "mnist1d.yaml"
ROWS = [
    ("teacher", "CNN teacher (published ~94%)"),
    ("student_baseline", "MLP alone (published ~68%)"),
    ("student", "MLP distilled, transfer set"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--set", action="append", default=[], help="recipe override, as for protege run")
    args = parser.parse_args()

    results: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in ROWS}
    walls = []
    for seed in args.seeds:
        recipe = load_recipe(RECIPE, [f"seed={seed}", *args.set])
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            report = run_recipe(recipe, Path(tmp) / "run").report
            walls.append(time.perf_counter() - start)
        for name, _ in ROWS:
            entry = report["models"][name]
            results[name].append((entry["accuracy"], entry["training"]["train_seconds"]))
        print(f"seed {seed}: " + ", ".join(f"{n} {results[n][-1][0]:.1%}" for n, _ in ROWS), flush=True)

    print(
        f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; seeds {args.seeds}\n"
    )
    print("| model | test accuracy (mean ± std) | per seed | train time (s, mean) |")
    print("|---|---|---|---|")
    for name, title in ROWS:
        accs = [a for a, _ in results[name]]
        std = statistics.stdev(accs) if len(accs) > 1 else 0.0
        seeds = ", ".join(f"{a:.1%}" for a in accs)
        seconds = statistics.mean(s for _, s in results[name])
        print(f"| {title} | {statistics.mean(accs):.1%} ± {std:.1%} | {seeds} | {seconds:.1f} |")
    print(f"\nwhole recipe wall time per seed: {statistics.mean(walls):.0f} s")


if __name__ == "__main__":
    main()
