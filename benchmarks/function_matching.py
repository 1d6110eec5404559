"""Consistent teaching under augmentation ("function matching", Beyer et al. 2022) against the cached,
unaugmented teacher, at an equal step budget (issue 13), on a real image task: scikit-learn's bundled 8×8
handwritten digits.

    python benchmarks/function_matching.py                 # the BENCHMARKS.md run: 5 seeds, 1000 epochs
    python benchmarks/function_matching.py --seeds 0 --epochs 20   # a quick look

One CNN teacher per seed (trained with crops, the same in both arms), then the same small student distilled
with KD for the same epochs and batch size (so the same number of optimizer steps) two ways:
- **cached**: the training images as they are, the teacher's outputs computed once (teacher cache);
- **function matching**: each batch augmented (``--augment``: a random crop with 1-pixel padding then mixup
  at α = 1, or mixup alone at α = 0.4), the teacher run online on exactly the augmented batch the student reads.
``--student`` is an MLP (32 hidden units) or a small CNN (``cnn2d`` width 8 or 16, depth 2). The defaults are
the configuration where consistency pays (a 16-channel CNN on ~480 images, mixup at α = 1, a patient 1000
epochs); at 300 epochs the two arms are level (BENCHMARKS.md).
The model of the best validation epoch is scored on the test split; mean ± std over seeds.
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
from protege.recipe_reader import recipe_from_dict

AUGMENTS = {
    "crop+mixup": [{"name": "random_crop", "padding": 1}, {"name": "mixup", "alpha": 1.0}],
    "mixup": [{"name": "mixup", "alpha": 0.4}],
    "crop": [{"name": "random_crop", "padding": 1}],
    "mixup1": [{"name": "mixup", "alpha": 1.0}],
    "cutmix": [{"name": "cutmix", "alpha": 1.0}],
}
STUDENTS = {
    "mlp": {"source": "mlp", "hidden": 32, "layers": 1},
    "cnn": {"source": "cnn2d", "width": 8, "depth": 2},
    "cnn16": {"source": "cnn2d", "width": 16, "depth": 2},
}


def recipe(
    seed: int,
    epochs: int,
    consistent: bool,
    augment: str = "crop+mixup",
    student: str = "mlp",
    test_fraction: float = 0.2,
    teacher_epochs: int = 40,
) -> dict:
    """The teacher (crops) and the student, distilled cached or under augmentation with the teacher online."""
    student_train = {"epochs": epochs, "batch_size": 64, "lr": 0.003}
    if consistent:
        student_train["augment"] = AUGMENTS[augment]
    return {
        "name": "function_matching",
        "seed": seed,
        "data": {"source": "digits", "val_fraction": 0.1, "test_fraction": test_fraction},
        "teacher": {
            "model": {"source": "cnn2d", "width": 32, "depth": 3},
            "train": {
                "epochs": teacher_epochs,
                "batch_size": 64,
                "lr": 0.003,
                "augment": [{"name": "random_crop", "padding": 1}],
            },
        },
        "student": {
            "model": STUDENTS[student],
            "objective": {"name": "kd", "temperature": 4, "alpha": 1.0},
            "train": student_train,
        },
        "evaluate": {"latency": False, "html": False},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=1000, help="the student's, in both arms")
    parser.add_argument("--augment", choices=list(AUGMENTS), default="mixup1", help="the student's, consistent arm")
    parser.add_argument("--student", choices=list(STUDENTS), default="cnn16")
    parser.add_argument("--test-fraction", type=float, default=0.7, help="0.7 leaves ~480 training images")
    parser.add_argument("--teacher-epochs", type=int, default=40)
    args = parser.parse_args()
    results: dict[str, list[float]] = {"teacher": [], "cached": [], "function matching": []}
    seconds: dict[str, list[float]] = {"cached": [], "function matching": []}
    for seed in args.seeds:
        for arm, consistent in (("cached", False), ("function matching", True)):
            with tempfile.TemporaryDirectory() as tmp:
                started = time.perf_counter()
                report = run_recipe(
                    recipe_from_dict(
                        recipe(
                            seed,
                            args.epochs,
                            consistent,
                            args.augment,
                            args.student,
                            args.test_fraction,
                            args.teacher_epochs,
                        )
                    ),
                    Path(tmp) / "run",
                ).report
                seconds[arm].append(time.perf_counter() - started)
            results[arm].append(report["models"]["student"]["accuracy"])
            if not consistent:
                results["teacher"].append(report["models"]["teacher"]["accuracy"])
            mode = report["models"]["student"]["training"]["teacher_mode"]
            print(f"seed {seed} {arm}: {results[arm][-1]:.2%} (teacher {mode})", flush=True)
    print(f"\ndigits, seeds {args.seeds}, {args.student} student, {args.epochs} epochs of batch 64 in both arms, "
          f"augmentation of the consistent arm: {args.augment}\n")  # fmt: skip
    print("| model | test accuracy | run seconds |")
    print("|---|---|---|")
    for name, values in results.items():
        spread = f" ± {statistics.stdev(values):.2%}" if len(values) > 1 else ""
        took = f"{statistics.mean(seconds[name]):.0f}" if name in seconds else "–"
        print(f"| {name} | {statistics.mean(values):.2%}{spread} | {took} |")


if __name__ == "__main__":
    main()
