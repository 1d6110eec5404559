"""A model meets data it was not trained for: other classes, columns in another order, other
preprocessing, a test split that holds its training examples; and labels that are missing or NaN."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tests.catalogue import csv_data, recipe

from protege.cli import main
from protege.models import ModelCard, save_model
from protege.models.builtin import mlp

QUICK = {"epochs": 1, "batch_size": 256}


def trained_run(tmp: Path, data: dict, name: str = "teacher_run") -> Path:
    """A run of one small model on ``data``, made through the CLI (its model card is the real one)."""
    argv = recipe(tmp, {"data": data, "student": {"model": {"source": "mlp", "hidden": 8}, "train": QUICK}})
    argv[argv.index("-o") + 1] = str(tmp / name)
    assert main(argv) == 0
    return tmp / name


def columns_csv(path: Path, order: list[str]) -> Path:
    """Two informative columns and a label, the columns written in ``order``."""
    rng = np.random.default_rng(0)
    rows = [",".join([*order, "label"])]
    for i in range(60):
        values = {"f": rng.normal() + 3 * (i % 2), "g": rng.normal()}
        rows.append(",".join([*(f"{values[c]:.4f}" for c in order), str(i % 2)]))
    path.write_text("\n".join(rows) + "\n")
    return path


def teacher_reads_columns_in_another_order(tmp: Path) -> list[str]:
    teacher = trained_run(tmp, {"source": f"csv:{columns_csv(tmp / 'fg.csv', ['f', 'g'])}"})
    swapped = columns_csv(tmp / "gf.csv", ["g", "f"])
    return recipe(
        tmp,
        {
            "data": {"source": f"csv:{swapped}"},
            "teacher": {"model": {"source": f"run:{teacher}"}},
            "student.objective": {"name": "kd"},
        },
    )


def teacher_trained_on_standardised_inputs(tmp: Path) -> list[str]:
    teacher = trained_run(tmp, {"source": "digits", "standardize": True})
    return recipe(tmp, {"teacher": {"model": {"source": f"run:{teacher}"}}, "student.objective": {"name": "kd"}})


def teacher_split_with_another_seed(tmp: Path) -> list[str]:
    teacher = trained_run(tmp, {"source": "digits"})
    return recipe(
        tmp, {"seed": 1, "teacher": {"model": {"source": f"run:{teacher}"}}, "student.objective": {"name": "kd"}}
    )


def dry_run_of_a_teacher_split_with_another_seed(tmp: Path) -> list[str]:
    return [*teacher_split_with_another_seed(tmp), "--dry-run"]


def evaluate_on_a_split_that_leaks(tmp: Path) -> list[str]:
    run = trained_run(tmp, {"source": "digits"})
    return ["evaluate", str(run / "student" / "model"), "--data", "digits", "--seed", "3", "--no-latency"]


def teacher_with_other_class_names(tmp: Path) -> list[str]:
    directory = tmp / "letters"
    names = [chr(ord("a") + i) for i in range(10)]
    save_model(mlp((1, 8, 8), 10, hidden=4), ModelCard("mlp", {"hidden": 4}, [1, 8, 8], names), directory)
    return recipe(tmp, {"teacher": {"model": {"source": f"run:{directory}"}}, "student.objective": {"name": "kd"}})


def jsonl_row_without_label(tmp: Path) -> list[str]:
    rows = [{"a": i, "label": "x" if i % 2 else "y"} for i in range(9)] + [{"a": 9}]
    (tmp / "data.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return recipe(tmp, {"data": {"source": f"jsonl:{tmp / 'data.jsonl'}"}})


def model_with_nan_outputs(tmp: Path) -> list[str]:
    module = mlp((2,), 2, hidden=4)
    with torch.no_grad():
        module.head.bias.fill_(float("nan"))
    save_model(module, ModelCard("mlp", {"hidden": 4}, [2], ["no", "yes"]), tmp / "broken")
    np.save(tmp / "inputs.npy", np.zeros((3, 2), dtype=np.float32))
    return ["predict", str(tmp / "broken"), str(tmp / "inputs.npy"), "--json"]


CASES: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "teacher that reads the columns in another order": (
        teacher_reads_columns_in_another_order,
        "reads the columns in another order (f, g); the data gives g, f: set data.options.feature_columns: [f, g]",
    ),
    "teacher trained on standardised inputs, data not standardised": (
        teacher_trained_on_standardised_inputs,
        "was trained on standardised inputs; set data.standardize: true",
    ),
    "teacher whose test split was drawn with another seed": (
        teacher_split_with_another_seed,
        "with the test split drawn by seed 0 (test_fraction 0.2); a test split drawn by seed 1",
    ),
    "dry run of a teacher whose test split was drawn with another seed": (
        dry_run_of_a_teacher_split_with_another_seed,
        "with the test split drawn by seed 0 (test_fraction 0.2); a test split drawn by seed 1",
    ),
    "evaluate on a test split that holds the model's training examples": (
        evaluate_on_a_split_that_leaks,
        "holds its training examples: use seed 0 and test_fraction 0.2",
    ),
    "teacher with other class names": (teacher_with_other_class_names, "predicts class 'a', which the data does not"),
    "JSON Lines row without a label": (jsonl_row_without_label, "line 10 has no label; give every example a label"),
    "NaN label": (lambda t: csv_data(t, "a,label\n1,x\n2,nan\n3,y\n4,x\n"), "line 3 has a NaN label"),
    "empty label cell": (lambda t: csv_data(t, "a,label\n1,x\n2, \n3,y\n4,x\n"), "line 3 has no label"),
    "NaN label in an npz file": (
        lambda t: _npz_float_labels(t, [0.0, 1.0, np.nan, 1.0, 0.0, 1.0]),
        "example 3 has a NaN label",
    ),
    "model whose outputs are not finite": (model_with_nan_outputs, "the model gives non-finite outputs"),
}


def _npz_float_labels(tmp: Path, labels: list[float]) -> list[str]:
    np.savez(tmp / "data.npz", x=np.ones((len(labels), 2), dtype=np.float32), y=np.array(labels))
    return recipe(tmp, {"data": {"source": f"npz:{tmp / 'data.npz'}"}})
