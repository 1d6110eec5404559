"""Values out of range or unparsable: option ranges declared in the signatures, sizes, command-line values.

Each range is checked before anything trains, by the same rule in a recipe, ``--dry-run`` and the CLI flags.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from tests.catalogue import recipe, saved_model

from protege.cli import main

TEACHER = {"model": {"source": "mlp", "hidden": 16}, "train": {"epochs": 1, "batch_size": 256}}


def distilling(tmp: Path, objective: dict, **changes) -> list[str]:
    """A teacher and a student distilling with ``objective``; any problem must show before the teacher trains."""
    return recipe(tmp, {"teacher": TEACHER, "student.objective": objective, **changes})


def trained_model(tmp: Path) -> str:
    assert main(recipe(tmp)) == 0
    return str(tmp / "run")


def written_array(path: Path) -> str:
    np.save(path, np.zeros((2, 64), dtype=np.float32))
    return str(path)


def dry_run(argv: list[str]) -> list[str]:
    return [*argv[:2], "--dry-run"]


CASES: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "kd temperature of zero": (
        lambda t: distilling(t, {"name": "kd", "temperature": 0}),
        "student.objective: objective 'kd': temperature: Input should be greater than 0 (got 0)",
    ),
    "kd alpha above one": (
        lambda t: distilling(t, {"name": "kd", "alpha": 2}),
        "objective 'kd': alpha: Input should be less than or equal to 1 (got 2)",
    ),
    "kd label smoothing of 1.5": (
        lambda t: distilling(t, {"name": "kd", "label_smoothing": 1.5}),
        "objective 'kd': label_smoothing: Input should be less than 1 (got 1.5)",
    ),
    "further students without a teacher": (
        lambda t: recipe(t, {"students": {"other": {"model": {"source": "mlp", "hidden": 4}}}}),
        "students: further students distil beside 'student' from a 'teacher'; name both",
    ),
    "a further student named like a teacher": (
        lambda t: distilling(t, {"name": "kd"}, students={"teacher_2": {"model": {"source": "mlp"}}}),
        "students: 'teacher_2' cannot name a student",
    ),
    "born-again generations on a further student": (
        lambda t: distilling(t, {"name": "kd"}, students={"other": {"model": {"source": "mlp"}, "generations": 2}}),
        "students.other: generations and baseline belong to 'student' alone",
    ),
    "length grouping on a model that reads whole inputs": (
        lambda t: recipe(t, {"student.train.group_by_length": True}),
        "student.train.group_by_length: groups texts by token count for a Hugging Face model (hf:); mlp reads",
    ),
    "a teacher runtime whose outputs differ from eager beyond the tolerance": (
        lambda t: distilling(
            t, {"name": "kd"}, **{"student.train.inference_runtime": "bf16", "student.train.inference_tolerance": 1e-9}
        ),
        "inference_runtime bf16: outputs differ from eager PyTorch by",
    ),
    "kd temperature of zero, in a dry run": (
        lambda t: dry_run(distilling(t, {"name": "kd", "temperature": 0})),
        "objective 'kd': temperature: Input should be greater than 0",
    ),
    "infinite temperature": (
        lambda t: distilling(t, {"name": "dkd", "temperature": float("inf")}),
        "objective 'dkd': temperature: Input should be a finite number",
    ),
    "student strategy out of range": (
        lambda t: distilling(t, {"name": "kd"}, **{"student.strategy": {"name": "discriminative_lr", "decay": 2}}),
        "strategy 'discriminative_lr': decay: Input should be less than or equal to 1 (got 2)",
    ),
    "negative hidden width": (
        lambda t: recipe(t, {"student.model": {"source": "mlp", "hidden": -3}}),
        "model 'mlp': hidden: Input should be greater than or equal to 1 (got -3)",
    ),
    "negative width in a list of widths": (
        lambda t: recipe(t, {"student.model": {"source": "mlp", "hidden": [8, -1]}}),
        "model 'mlp': hidden[1]: Input should be greater than or equal to 1 (got -1)",
    ),
    "cnn of depth zero": (
        lambda t: recipe(t, {"student.model": {"source": "cnn2d", "depth": 0}}),
        "model 'cnn2d': depth: Input should be greater than or equal to 1 (got 0)",
    ),
    "hugging face max_length of one": (
        lambda t: recipe(t, {"student.model": {"source": f"hf:{t / 'bert'}", "max_length": 1}}),
        "max_length: Input should be greater than or equal to 2 (got 1)",
    ),
    "hugging face pooling that does not exist": (
        lambda t: recipe(t, {"student.model": {"source": f"hf:{t / 'bert'}", "pooling": "max"}}),
        "pooling: Input should be 'mean' or 'cls' (got 'max')",
    ),
    "model too large to allocate": (
        lambda t: recipe(t, {"student.model": {"source": "mlp", "hidden": 60000, "layers": 100}}),
        "more than the 268,435,456 a builtin model may have; make it smaller",
    ),
    "kernel wider than the input": (
        lambda t: recipe(t, {"data.source": "mnist1d", "student.model": {"source": "cnn1d", "kernel_size": 500}}),
        "cannot build model 'cnn1d' for inputs of shape (1, 40): Calculated padded input size",
    ),
    "mixup with no samples": (
        lambda t: distilling(t, {"name": "kd"}, transfer={"source": "mixup", "options": {"num_samples": -1}}),
        "transfer set 'mixup': num_samples: Input should be greater than or equal to 1 (got -1)",
    ),
    "data option of the wrong type": (
        lambda t: recipe(t, {"data": {"source": "mnist1d", "options": {"num_samples": "many"}}}),
        "data source 'mnist1d': num_samples: Input should be a valid integer",
    ),
    "override that is not valid YAML": (
        lambda t: [*recipe(t), "--set", "student.train.epochs=[1"],
        "--set 'student.train.epochs=[1': the value is not valid YAML",
    ),
    "model option that is not valid YAML": (
        lambda t: ["train", "--model", "mlp", "--option", "hidden={8", "--data", "digits", "-o", str(t / "run")],
        "--option 'hidden={8': the value is not valid YAML",
    ),
    "data option that is not valid YAML": (
        lambda t: ["rank", "--models", "mlp", "--data", "mnist1d", "--data-option", "num_samples=@5"],
        "--data-option 'num_samples=@5': the value is not valid YAML",
    ),
    "negative seed": (lambda t: recipe(t, {"seed": -1}), "seed: Input should be greater than or equal to 0 (got -1)"),
    "seed beyond numpy's range": (lambda t: recipe(t, {"seed": 2**40}), "seed: Input should be less than or equal to"),
    "override holding binary data": (
        lambda t: [*recipe(t, {"student.model": {"source": "timm:x"}}), "--set", "student.model.x=!!binary AA=="],
        "student.model.x: a bytes value; a recipe holds text, numbers",
    ),
    "override holding a date": (
        lambda t: [*recipe(t), "--set", "name=2024-01-31"],
        "name: a date value; a recipe holds text, numbers, true/false, lists and blocks (quote a date",
    ),
    "rank limit of zero": (
        lambda t: ["rank", "--models", "mlp", "--data", "digits", "--limit", "0"],
        "limit 0 is too small for 10 classes",
    ),
    "negative latency batch size": (
        lambda t: ["evaluate", trained_model(t), "--batch-sizes", "-5"],
        "latency_batch_sizes.0: Input should be greater than or equal to 1 (got -5)",
    ),
    "more latency threads than any machine has": (
        lambda t: ["evaluate", str(saved_model(t, 10)), "--data", "digits", "--threads", "100000"],
        "threads: Input should be less than or equal to 256",
    ),
    "top-k of zero": (
        lambda t: ["predict", str(saved_model(t, 10)), written_array(t / "x.npy"), "--top-k", "0"],
        "top_k must be at least 1",
    ),
}
