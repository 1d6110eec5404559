"""Multi-task learning on the two-digit set (recipes/multitask.yaml's data, tasks and models), over several
seeds:

- one MLP with a head per task (left digit, right digit, their sum) trained with equal weights, with
  uncertainty weighting (Kendall et al. 2018) and with PCGrad (Yu et al. 2020, torchjd's aggregator);
- against single-task MLPs of the same total size: one per task, each narrower, whose parameters together
  match the multi-task model's;
- the multi-teacher student: one wide single-task teacher per task, then the recipe's multi-head student
  (PCGrad) distilled head by head from them, against its teachers.

Each cell is the mean ± std over the seeds of the test score (accuracy for the digits, R² for the sum).

    python benchmarks/multitask.py [--seeds 0 1 2] [--samples N] [--teacher-epochs N] [--student-epochs N]
                                   [--student-hidden N] [--overlap N] [--no-teachers]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PROTEGE_QUIET", "1")

import yaml

from protege.models.builtin import mlp
from protege.pipeline import run_recipe
from protege.recipe_reader import recipe_from_dict

RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "multitask.yaml"
COMBINES = ("equal", "uncertainty", "pcgrad")
INPUTS = (1, 8, 14)


def base(seed: int, args: argparse.Namespace) -> dict:
    """The bundled recipe with ``seed``, no latency, the command line's sizes, and no teachers."""
    raw = yaml.safe_load(RECIPE.read_text())
    raw["seed"] = seed
    raw["evaluate"] = {"latency": False, "html": False}
    raw["data"]["options"]["num_samples"] = args.samples
    raw["teacher"]["train"]["epochs"] = args.teacher_epochs or raw["teacher"]["train"]["epochs"]
    raw["student"]["train"]["epochs"] = args.student_epochs or raw["student"]["train"]["epochs"]
    raw["data"]["options"]["overlap"] = args.overlap
    raw["student"]["model"]["hidden"] = args.student_hidden or raw["student"]["model"]["hidden"]
    return raw


def parameters(hidden: int, widths: list[int], layers: int) -> int:
    return sum(sum(p.numel() for p in mlp(INPUTS, w, hidden=hidden, layers=layers).parameters()) for w in widths)


def matched_width(raw: dict) -> tuple[int, int, int]:
    """The single-task MLP width whose models, one per task, together have about the multi-task model's
    parameters; returns (width, their total, the multi-task model's)."""
    model = raw["student"]["model"]
    widths = [10 if t["type"] == "classification" else 1 for t in raw["multitask"]["tasks"]]
    shared = parameters(model["hidden"], [sum(widths)], model["layers"])
    best = min(range(4, model["hidden"] + 1), key=lambda h: abs(parameters(h, widths, model["layers"]) - shared))
    return best, parameters(best, widths, model["layers"]), shared


def scores(report: dict, model: str) -> dict[str, float]:
    return {task: entry["score"] for task, entry in report["multitask"]["models"][model]["tasks"].items()}


def seed_results(seed: int, args: argparse.Namespace, tmp: Path) -> dict[str, dict[str, float]]:
    """Every row's per-task test score for one seed."""
    results: dict[str, dict[str, float]] = {}
    for combine in COMBINES:
        raw = base(seed, args)
        del raw["teacher"]
        raw["multitask"]["combine"] = combine
        results[f"multi-task, {combine}"] = scores(run_recipe(recipe_from_dict(raw), tmp / combine).report, "student")
    width, _, _ = matched_width(base(seed, args))
    single: dict[str, float] = {}
    for task in base(seed, args)["multitask"]["tasks"]:
        raw = base(seed, args)
        del raw["teacher"]
        raw["multitask"]["tasks"] = [task]
        raw["student"]["model"]["hidden"] = width
        single.update(scores(run_recipe(recipe_from_dict(raw), tmp / task["name"]).report, "student"))
    results["single-task, same total size"] = single
    if args.no_teachers:
        return results
    report = run_recipe(recipe_from_dict(base(seed, args)), tmp / "distilled").report
    teachers = {}
    for task in report["multitask"]["tasks"]:
        teachers.update(scores(report, f"teacher_{task['name']}"))
    results["teachers (one per task)"] = teachers
    results["student distilled from them (pcgrad)"] = scores(report, "student")
    return results


def table(results: dict[int, dict[str, dict[str, float]]], tasks: list[str]) -> str:
    """Rows × tasks, mean ± std over the seeds, plus each row's average score."""
    rows = list(next(iter(results.values())))
    lines = ["| model | " + " | ".join(tasks) + " | mean score |", "|---" * (len(tasks) + 2) + "|"]
    for row in rows:
        cells = []
        for task in [*tasks, "mean"]:
            values = [statistics.fmean(r[row].values()) if task == "mean" else r[row][task] for r in results.values()]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.fmean(values):.3f} ± {spread:.3f}")
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--samples", type=int, default=2000, help="two-digit examples (the recipe's 2000)")
    parser.add_argument("--teacher-epochs", type=int, help="default: the recipe's")
    parser.add_argument("--student-epochs", type=int, help="default: the recipe's (also the single-task models')")
    parser.add_argument("--student-hidden", type=int, help="the multi-task MLP's width (default: the recipe's 64)")
    parser.add_argument("--overlap", type=int, default=2, help="columns the two digits share (the recipe's 2)")
    parser.add_argument("--no-teachers", action="store_true", help="skip the teachers and the distilled student")
    args = parser.parse_args()
    started = time.perf_counter()
    results = {}
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            results[seed] = seed_results(seed, args, Path(tmp))
    raw = base(0, args)
    width, total, shared = matched_width(raw)
    print(f"\nseeds {args.seeds}; {args.samples} examples, overlap {args.overlap}; epochs: teachers "
          f"{raw['teacher']['train']['epochs']}, "
          f"students {raw['student']['train']['epochs']}; multi-task MLP {raw['student']['model']['hidden']}×"
          f"{raw['student']['model']['layers']} ({shared:,} parameters), single-task MLPs {width}×"
          f"{raw['student']['model']['layers']} ({total:,} together), teachers MLP "
          f"{raw['teacher']['model']['hidden']}×{raw['teacher']['model']['layers']}; "
          f"{time.perf_counter() - started:.0f} s in all\n")  # fmt: skip
    print(table(results, [t["name"] for t in raw["multitask"]["tasks"]]))
    print("\nscore: test accuracy (left, right), test R² (sum)")


if __name__ == "__main__":
    main()
