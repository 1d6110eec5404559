"""Continual streams that cannot work: experiences without examples, class orders naming classes the data
lacks, strategies that do not fit the scenario, task-incremental models used without task ids."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.catalogue import recipe

from protege.cli import main

QUICK = {"epochs": 1, "batch_size": 256}


def stream(tmp: Path, data: dict | None = None, student: dict | None = None, **continual) -> list[str]:
    body = {
        "continual": {"experiences": 2, "strategies": ["naive"], **continual},
        "student": student or {"model": {"source": "mlp", "hidden": 4}, "train": QUICK},
    }
    if data is not None:
        body["data"] = data
    return recipe(tmp, body)


def few_examples(tmp: Path) -> list[str]:
    """Class c has one example: two of the three splits cannot hold it."""
    lines = ["u,v,label"] + [f"{i},{i % 7},{'c' if i == 29 else ['a', 'b'][i % 2]}" for i in range(30)]
    (tmp / "data.csv").write_text("\n".join(lines) + "\n")
    data = {"source": f"csv:{tmp / 'data.csv'}", "options": {"label_column": "label"}}
    return stream(tmp, data, experiences=3)


def table(tmp: Path) -> dict:
    lines = ["u,v,label"] + [f"{i},{i % 7},{['a', 'b'][i % 2]}" for i in range(40)]
    (tmp / "table.csv").write_text("\n".join(lines) + "\n")
    return {"source": f"csv:{tmp / 'table.csv'}", "options": {"label_column": "label"}}


def task_incremental_model(tmp: Path, command: str) -> list[str]:
    argv = stream(tmp, scenario="task_incremental")
    assert main(argv) == 0
    model = tmp / "run" / "naive" / "exp2"
    if command == "predict":
        (tmp / "x.csv").write_text(",".join(f"f{i}" for i in range(64)) + "\n" + ",".join(["0"] * 64) + "\n")
        return ["predict", str(model), str(tmp / "x.csv")]
    return ["evaluate", str(model), "--data", "digits"]


CASES: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "class order naming a class the data lacks": (
        lambda t: stream(t, class_order=["0", "1", "2", "3", "4", "5", "6", "7", "8", "ten"]),
        "continual.class_order names class 'ten', which the data does not have",
    ),
    "class order leaving a class out": (
        lambda t: stream(t, class_order=["0", "1", "2"]),
        "continual.class_order leaves out class '3'; list every class of the data once",
    ),
    "more experiences than classes": (
        lambda t: stream(t, experiences=11),
        "continual.experiences is 11, more than the data's 10 classes",
    ),
    "an experience with no examples in a split": (
        few_examples,
        "experience 3 (classes c) has no",
    ),
    "unknown continual strategy": (
        lambda t: stream(t, strategies=["naive", "ewcc"]),
        "unknown continual strategy 'ewcc' (did you mean \"ewc\"?)",
    ),
    "continual strategy option out of range": (
        lambda t: stream(t, strategies=[{"name": "replay", "buffer_size": 0}]),
        "continual strategy 'replay'",
    ),
    "strategy listed twice": (
        lambda t: stream(t, strategies=["naive", "naive"]),
        "strategy 'naive' is listed twice",
    ),
    "icarl on a domain-incremental stream": (
        lambda t: stream(t, scenario="domain_incremental", strategies=["icarl"]),
        "continual strategy 'icarl' does not fit a domain-incremental stream",
    ),
    "rotated domains of tabular inputs": (
        lambda t: stream(t, table(t), scenario="domain_incremental", shift="rotate"),
        "continual.shift rotate turns images, and these inputs have shape (2,)",
    ),
    "continual recipe with a teacher": (
        lambda t: recipe(
            t,
            {
                "continual": {"strategies": ["naive"]},
                "teacher": {"model": {"source": "mlp", "hidden": 4}, "train": QUICK},
            },
        ),
        "continual: a continual recipe has no teacher stage",
    ),
    "task-incremental model evaluated without task ids": (
        lambda t: task_incremental_model(t, "evaluate"),
        "was trained task-incremental: it needs the task (experience) of each example at test time",
    ),
    "task-incremental model asked to predict": (
        lambda t: task_incremental_model(t, "predict"),
        "was trained task-incremental",
    ),
}
