"""Distillation beyond single-label classification: the regression and multi-label recipes over several
seeds, each the teacher, the same small student trained alone, and that student distilled on the
recipe's transfer set; test metrics as mean ± std over the seeds (the best epoch of each is chosen on
the validation split, never on the test split).

    python benchmarks/tasks.py [--seeds 0 1 2] [--recipes regression multilabel]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PROTEGE_QUIET", "1")

from protege.pipeline import run_recipe
from protege.recipe_reader import load_recipe

RECIPES = Path(__file__).resolve().parent.parent / "recipes"
METRICS = {"regression": ("r2", "rmse", "mae"), "multilabel": ("micro_f1", "macro_f1", "map")}
MODELS = (("teacher", "teacher"), ("student_baseline", "student alone"), ("student", "student distilled"))


def run_seeds(name: str, seeds: list[int]) -> tuple[dict, dict]:
    """Each seed's report for the recipe ``name``, by seed; and the recipe's sizes."""
    reports = {}
    for seed in seeds:
        recipe = load_recipe(
            RECIPES / f"{name}.yaml", [f"seed={seed}", "evaluate.latency=false", "evaluate.html=false"]
        )
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            reports[seed] = run_recipe(recipe, Path(tmp) / "run").report
            print(f"{name} seed {seed}: {time.perf_counter() - started:.0f} s", flush=True)
    return reports, next(iter(reports.values()))


def table(name: str, reports: dict, first: dict) -> str:
    task = first["task"]
    keys = METRICS[task]
    lines = [
        f"| {name} ({task}) | params | " + " | ".join(f"test {k}" for k in keys) + " | per seed (" + keys[0] + ") |"
    ]
    lines.append("|---" * (len(keys) + 3) + "|")
    for key, title in MODELS:
        values = {k: [r["models"][key][k] for r in reports.values()] for k in keys}
        cells = [
            f"{statistics.mean(v):.3f} ± {statistics.stdev(v) if len(v) > 1 else 0.0:.3f}" for v in values.values()
        ]
        seeds = ", ".join(f"{v:.3f}" for v in values[keys[0]])
        lines.append(f"| {title} | {first['models'][key]['parameters']:,} | " + " | ".join(cells) + f" | {seeds} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--recipes", nargs="+", default=["regression", "multilabel"])
    args = parser.parse_args()
    tables = []
    for name in args.recipes:
        reports, first = run_seeds(name, args.seeds)
        data = first["data"]
        print(f"{name}: {data['source']}, train {data['sizes']['train']} / val {data['sizes']['val']} / test "
              f"{data['sizes']['test']}, seeds {args.seeds}")  # fmt: skip
        tables.append(table(name, reports, first))
    print("\n\n".join(tables))


if __name__ == "__main__":
    main()
