"""Requests to forget that cannot be carried out: ids that are not training examples, an exact request
for a run trained without shards, a class the data lacks, methods that do not exist."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.catalogue import BASE, recipe

from protege.cli import main

QUICK = {"epochs": 1, "batch_size": 256}


def forgetting(tmp: Path, **unlearning) -> list[str]:
    block = {"forget": {"fraction": 0.1}, "methods": ["finetune"], "epochs": 1, **unlearning}
    return recipe(tmp, {"unlearning": block})


def trained_run(tmp: Path) -> Path:
    argv = recipe(tmp, {"student": {**BASE["student"], "train": QUICK}})
    assert main(argv) == 0
    return tmp / "run"


def forget_rows(tmp: Path, *rows: int, method: str = "finetune") -> list[str]:
    run = trained_run(tmp)
    (tmp / "rows.txt").write_text("".join(f"{r}\n" for r in rows))
    return ["forget", str(run), "--examples", str(tmp / "rows.txt"), "--method", method, "-o", str(tmp / "new")]


def test_row(tmp: Path) -> list[str]:
    from protege.data.build import load_data

    row = int(load_data("digits", seed=0).rows["test"][0])
    return forget_rows(tmp, row)


CASES: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "forget an id that is not in the data": (
        lambda t: forget_rows(t, 99999),
        "row 99999 is not in the data (1797 rows, numbered from 0)",
    ),
    "forget a test example": (test_row, "is in the test split, not the training data"),
    "exact unlearning of a run trained without shards": (
        lambda t: forget_rows(t, 1, method="sisa"),
        "was not trained with shards, so exact unlearning (sisa) cannot retrain only some of them",
    ),
    "forget from a folder that is not a run": (
        lambda t: ["forget", str(t), "--fraction", "0.1"],
        "is not a protege run directory (no config.yaml)",
    ),
    "forget without naming the examples": (
        lambda t: ["forget", str(trained_run(t))],
        "name the examples with one of --examples FILE, --class or --fraction",
    ),
    "forget a share that is not a fraction": (
        lambda t: ["forget", str(trained_run(t)), "--fraction", "1.5"],
        "protege forget: fraction",
    ),
    "forget a class the data lacks": (
        lambda t: forgetting(t, forget={"class": "eleven"}),
        "unlearning.forget.class: 'eleven' is not a class of the data",
    ),
    "unknown unlearning method": (
        lambda t: forgetting(t, methods=["scrubb"]),
        "unknown unlearning method 'scrubb'",
    ),
    "two ways to name the forgotten examples": (
        lambda t: forgetting(t, forget={"fraction": 0.1, "rows": [1]}),
        "give exactly one of fraction, class, rows or file",
    ),
    "unlearning with a teacher": (
        lambda t: recipe(
            t,
            {
                "unlearning": {"forget": {"fraction": 0.1}, "methods": ["finetune"]},
                "teacher": {"model": {"source": "mlp", "hidden": 4}, "train": QUICK},
            },
        ),
        "unlearning: teacher does not apply to an unlearning run",
    ),
}
