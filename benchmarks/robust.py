"""Adversarial training and robust distillation on scikit-learn's 8×8 digits (recipes/robust.yaml's data,
models, budget and schedule), over several seeds:

- the wide MLP teacher trained plainly, with PGD (Madry et al. 2018) and with TRADES (Zhang et al. 2019);
- the small MLP student trained alone (plainly, with PGD, with TRADES), distilled plainly (Hinton's KD) from
  the PGD teacher, and distilled robustly from it with ARD (Goldblum et al. 2020) and RSLAD (Zhu et al. 2022);
- clean and robust test accuracy of each (PGD-20, 2 restarts, L∞ ε = 0.1 in pixel units);
- protege's PGD against torchattacks' on every model of the seed (no random start, so both begin at x):
  the accuracy on each library's adversarial examples, and the largest difference between them.

    python benchmarks/robust.py [--seeds 0 1 2] [--teacher-epochs N] [--student-epochs N] [--student-hidden N]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("PROTEGE_QUIET", "1")

import torch
import yaml
from torch import nn

from protege.pipeline import load_recipe_data, run_recipe
from protege.recipe_reader import recipe_from_dict
from protege.robust.attacks import Attack, cross_entropy_loss, pgd
from protege.robust.space import RawInputModel, input_space

RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "robust.yaml"
TEACHERS = ("plain", "pgd", "trades")
STUDENTS = (  # (row, robust.student or baseline method, distilled)
    ("alone, plain", "plain", False),
    ("alone, PGD", "pgd", False),
    ("alone, TRADES", "trades", False),
    ("KD from the PGD teacher", "plain", True),
    ("ARD from the PGD teacher (α 0.9, T 5)", {"name": "ard", "alpha": 0.9, "temperature": 5.0}, True),
    ("RSLAD from the PGD teacher", "rslad", True),
)


@dataclass(frozen=True)
class Sizes:
    """What the command line changes in the recipe (None: the recipe's own)."""

    teacher_epochs: int | None = None
    student_epochs: int | None = None
    student_hidden: int | None = None


def base(seed: int, sizes: Sizes) -> dict:
    """The bundled recipe with ``seed``, no latency, and the ``sizes`` given."""
    raw = yaml.safe_load(RECIPE.read_text())
    raw["seed"] = seed
    raw["evaluate"] = {"latency": False, "html": False}
    raw["robust"].pop("baseline")  # each student below is its own run
    for stage, epochs in (("teacher", sizes.teacher_epochs), ("student", sizes.student_epochs)):
        if epochs is not None:
            raw[stage]["train"]["epochs"] = epochs
    if sizes.student_hidden is not None:
        raw["student"]["model"]["hidden"] = sizes.student_hidden
    return raw


def teacher_recipe(seed: int, sizes: Sizes, method: str) -> dict:
    raw = base(seed, sizes)
    raw["robust"]["teacher"] = method
    del raw["student"]
    return raw


def student_recipe(seed: int, sizes: Sizes, method, distilled: bool, teacher_dir: Path) -> dict:
    raw = base(seed, sizes)
    raw["student"].pop("baseline")
    if distilled:
        raw["teacher"] = {"model": {"source": f"run:{teacher_dir}"}}  # loaded: trained once per seed
        raw["robust"]["student"] = method
        if method == "plain":
            raw["student"]["objective"] = {"name": "kd", "temperature": 4.0, "alpha": 0.9}
    else:
        del raw["teacher"]
        raw["robust"]["student"] = method
    return raw


def run(raw: dict, out: Path) -> tuple[dict, nn.Module, float]:
    started = time.perf_counter()
    result = run_recipe(recipe_from_dict(copy.deepcopy(raw)), out)
    name = "student" if "student" in result.stages else "teacher"
    return result.report["models"][name], result.stages[name].model, time.perf_counter() - started


def agreement(model: nn.Module, data, space, epsilon: float, steps: int = 20) -> dict | None:
    """Accuracy on protege's and on torchattacks' PGD examples of the test split, and their seconds."""
    try:
        import torchattacks
    except ImportError:
        return None
    model.eval()
    x, y = data.test.x, data.test.y
    attack = Attack(epsilon, "linf", steps, random_start=False)
    started = time.perf_counter()
    ours = pgd(model, x, cross_entropy_loss(y), attack, space)
    middle = time.perf_counter()
    theirs = torchattacks.PGD(RawInputModel(model, space), epsilon, attack.alpha, steps, random_start=False)(
        space.to_raw(x).clamp(0, 1), y
    )
    ended = time.perf_counter()
    with torch.no_grad():
        mine = (model(ours).argmax(1) == y).float().mean().item()
        other = (model(space.to_model(theirs)).argmax(1) == y).float().mean().item()
    gap = (space.to_raw(ours) - theirs).abs().max().item()
    return {"ours": mine, "torchattacks": other, "max_input_gap": gap, "seconds": (middle - started, ended - middle)}


def seed_results(seed: int, sizes: Sizes, tmp: Path) -> dict:
    rows: dict[str, dict] = {}
    raw = base(seed, sizes)
    data = load_recipe_data(recipe_from_dict(copy.deepcopy(raw)))
    space, epsilon = input_space(data, tuple(raw["robust"]["input_range"])), raw["robust"]["epsilon"]
    for method in TEACHERS:
        entry, model, seconds = run(teacher_recipe(seed, sizes, method), tmp / f"teacher_{method}")
        rows[f"teacher {method}"] = {**entry, "wall": seconds, "agreement": agreement(model, data, space, epsilon)}
        print(f"seed {seed} teacher {method}: {seconds:.0f} s", flush=True)
    teacher_dir = tmp / "teacher_pgd" / "teacher"
    for title, method, distilled in STUDENTS:
        entry, model, seconds = run(student_recipe(seed, sizes, method, distilled, teacher_dir), tmp / title[:12])
        rows[f"student {title}"] = {**entry, "wall": seconds, "agreement": agreement(model, data, space, epsilon)}
        print(f"seed {seed} student {title}: {seconds:.0f} s", flush=True)
    return rows


def _mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {spread:.3f}"


def quality_table(results: dict[int, dict], prefix: str, heading: str) -> str:
    lines = [f"| {heading} | params | clean acc | robust acc | robust ÷ clean | robust per seed | train s |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    first = next(iter(results.values()))
    for key in (k for k in first if k.startswith(prefix)):
        entries = [seed_rows[key] for seed_rows in results.values()]
        clean = [e["accuracy"] for e in entries]
        robust = [e["robust_accuracy"] for e in entries]
        ratio = [r / c for r, c in zip(robust, clean, strict=True)]
        seconds = statistics.mean(e["training"]["train_seconds"] for e in entries)
        lines.append(
            f"| {key.removeprefix(prefix)} | {entries[0]['parameters']:,} | {_mean_std(clean)} | {_mean_std(robust)} | "
            f"{_mean_std(ratio)} | {', '.join(f'{r:.3f}' for r in robust)} | {seconds:.1f} |"
        )
    return "\n".join(lines)


def agreement_table(results: dict[int, dict]) -> str:
    rows = [(seed, key, row["agreement"]) for seed, seed_rows in results.items() for key, row in seed_rows.items()]
    rows = [(seed, key, a) for seed, key, a in rows if a is not None]
    if not rows:
        return "torchattacks is not installed: no agreement check (pip install --no-deps torchattacks)"
    gaps = [abs(a["ours"] - a["torchattacks"]) * 100 for _, _, a in rows]
    inputs = max(a["max_input_gap"] for _, _, a in rows)
    ours, theirs = sum(a["seconds"][0] for _, _, a in rows), sum(a["seconds"][1] for _, _, a in rows)
    lines = ["| model (seed) | protege PGD-20 | torchattacks PGD-20 | difference (points) |", "|---|---|---|---|"]
    lines += [
        f"| {key} ({seed}) | {a['ours']:.4f} | {a['torchattacks']:.4f} | {gap:.2f} |"
        for (seed, key, a), gap in zip(rows, gaps, strict=True)
    ]
    lines.append(
        f"\n{len(rows)} models: largest accuracy difference {max(gaps):.2f} points (target ≤ 0.5), largest "
        f"difference between the two libraries' adversarial pixels {inputs:.2e}; attack time {ours:.1f} s (protege) "
        f"vs {theirs:.1f} s (torchattacks)"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--teacher-epochs", type=int, help="default: the recipe's")
    parser.add_argument("--student-epochs", type=int, help="default: the recipe's")
    parser.add_argument("--student-hidden", type=int, help="the student MLP's width (default: the recipe's)")
    args = parser.parse_args()
    sizes = Sizes(args.teacher_epochs, args.student_epochs, args.student_hidden)
    torch.optim.AdamW([nn.Parameter(torch.zeros(1))])  # pay the optimizer's first import outside any stage's time
    started = time.perf_counter()
    results = {}
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            results[seed] = seed_results(seed, sizes, Path(tmp))
    raw = base(0, sizes)
    print(f"\nseeds {args.seeds}; epochs: teacher {raw['teacher']['train']['epochs']}, student "
          f"{raw['student']['train']['epochs']}; {time.perf_counter() - started:.0f} s in all\n")  # fmt: skip
    print(quality_table(results, "teacher ", "teacher (MLP 512×2)"))
    print()
    print(quality_table(results, "student ", f"student (MLP {raw['student']['model']['hidden']})"))
    print()
    print(agreement_table(results))


if __name__ == "__main__":
    main()
