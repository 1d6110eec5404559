"""Task types beyond single-label classification: regression targets that are not numbers, label columns
that are neither one label nor several, objectives and models that do not fit the task."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.catalogue import recipe

from protege.cli import main

QUICK = {"epochs": 1, "batch_size": 256}


def table(tmp: Path, text: str, task: str, **options) -> list[str]:
    (tmp / "data.csv").write_text(text)
    data = {"source": f"csv:{tmp / 'data.csv'}", "task": task, "options": options}
    return recipe(tmp, {"data": data, "student": {"model": {"source": "mlp", "hidden": 4}, "train": QUICK}})


def rows(values: list[str], header: str = "a,b,y") -> str:
    return header + "\n" + "".join(f"{i},{i % 3},{v}\n" for i, v in enumerate(values))


def classifier_as_a_regression_teacher(tmp: Path) -> list[str]:
    argv = recipe(tmp, {"student": {"model": {"source": "mlp", "hidden": 4}, "train": QUICK}})
    argv[argv.index("-o") + 1] = str(tmp / "classifier")
    assert main(argv) == 0
    data = {"source": "friedman1", "task": "regression", "options": {"num_samples": 200, "features": 64}}
    return recipe(
        tmp,
        {
            "data": data,
            "teacher": {"model": {"source": f"run:{tmp / 'classifier'}"}},
            "student": {"model": {"source": "mlp", "hidden": 4}, "objective": {"name": "match"}, "train": QUICK},
        },
    )


CASES: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "regression target that is not a number": (
        lambda t: table(t, rows(["1.5", "2.0", "high", "0.5"] * 3), "regression", label_column="y"),
        "target 'y': 'high' is not a number; a regression target must be numeric",
    ),
    "multi-label task with one plain label column": (
        lambda t: table(t, rows(["x", "y", "z", "x"] * 3), "multilabel", label_column="y"),
        "a multi-label task needs several 0/1 label columns (options.label_columns) or one column of label lists",
    ),
    "multi-label column that is not 0 or 1": (
        lambda t: table(
            t,
            "a,p,q\n" + "".join(f"{i},{i % 2},{'maybe' if i == 5 else 1}\n" for i in range(12)),
            "multilabel",
            label_columns=["p", "q"],
        ),
        "label column 'q' holds 'maybe'; a multi-label column holds 0 or 1",
    ),
    "several label columns for a classification task": (
        lambda t: table(
            t, "a,p,q\n" + "".join(f"{i},{i % 2},1\n" for i in range(12)), "classification", label_columns=["p", "q"]
        ),
        "2 label columns for a classification task",
    ),
    "classification objective on a regression task": (
        lambda t: recipe(
            t,
            {
                "data": {"source": "friedman1", "task": "regression", "options": {"num_samples": 100}},
                "student": {"model": {"source": "mlp"}, "objective": {"name": "ce"}, "train": QUICK},
            },
        ),
        "'ce' trains classification outputs; a regression task trains with huber, match, mse",
    ),
    "classifier as the teacher of a regression task": (
        classifier_as_a_regression_teacher,
        "was trained for a classification task, and this data is a regression task",
    ),
    "monitor that the task does not measure": (
        lambda t: recipe(
            t,
            {
                "data": {"source": "friedman1", "task": "regression", "options": {"num_samples": 100}},
                "student": {"model": {"source": "mlp"}, "train": {**QUICK, "monitor": "val_accuracy"}},
            },
        ),
        "monitor 'val_accuracy' is not measured on the validation split of a regression task",
    ),
    "several teachers for a regression task": (
        lambda t: recipe(
            t,
            {
                "data": {"source": "friedman1", "task": "regression", "options": {"num_samples": 100}},
                "teacher": [{"model": {"source": "mlp"}, "train": QUICK}] * 2,
                "student": {"model": {"source": "mlp"}, "objective": {"name": "match"}, "train": QUICK},
            },
        ),
        "several teachers average class probabilities; a regression task takes one teacher",
    ),
}
