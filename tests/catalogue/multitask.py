"""Multi-task recipes that cannot work: a task name that does not exist (a teacher or the monitor naming an
unknown task), a label column the data lacks, two tasks of one name, a regression task with words for
values, an unknown combination method or option, and multi-task combined with another kind of run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.catalogue import recipe

from protege.models import ModelCard, save_model
from protege.models.builtin import mlp

QUICK = {"epochs": 1, "batch_size": 256}
TASKS = [{"name": "left", "columns": "left"}, {"name": "total", "columns": "sum", "type": "regression"}]


def multitask(tmp: Path, data: dict | None = None, changes: dict | None = None, **block) -> list[str]:
    """A multidigits recipe of two tasks (the left digit, the sum) with ``block`` in its multitask block."""
    body = {
        "data": data or {"source": "multidigits", "options": {"num_samples": 200}},
        "multitask": {"tasks": TASKS, **block},
        **(changes or {}),
    }
    return recipe(tmp, body)


def csv_tasks(tmp: Path, tasks: list[dict], value: str = "3") -> list[str]:
    rows = "".join(f"{i},{i % 2},{value if i == 4 else i}\n" for i in range(20))
    (tmp / "data.csv").write_text("x,kind,size\n" + rows)
    return multitask(tmp, {"source": f"csv:{tmp / 'data.csv'}"}, tasks=tasks)


def with_teacher(**block) -> Callable[[Path], list[str]]:
    teacher = {"teacher": {"model": {"source": "mlp", "hidden": 8}, "train": QUICK}}
    return lambda t: multitask(t, changes=teacher, **block)


def misfit_teacher(tmp: Path) -> list[str]:
    """A saved three-class model of the right inputs as the teacher of the ten-digit task."""
    names = ["a", "b", "c"]
    save_model(mlp((1, 8, 14), 3, hidden=4), ModelCard("mlp", {"hidden": 4}, [1, 8, 14], names), tmp / "three")
    return with_teacher(teacher_sources={"left": f"run:{tmp / 'three'}"})(tmp)


CASES: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "a teacher for a task that does not exist": (
        with_teacher(teacher_sources={"totl": "run:elsewhere"}),
        "multitask.teacher_sources.totl: no task is named 'totl' (did you mean \"total\"?); tasks: left, total",
    ),
    "a saved teacher whose outputs are not its task's": (
        misfit_teacher,
        "a teacher of task 'left' gives outputs a, b, c; the task has 0, 1, 2, 3, 4, 5, 6, 7, 8, 9",
    ),
    "a monitor naming a task that does not exist": (
        lambda t: multitask(t, monitor="val_rigth_accuracy"),
        "multitask.monitor: 'val_rigth_accuracy' is not measured (no task is named 'rigth')",
    ),
    "a monitor naming a metric the task does not have": (
        lambda t: multitask(t, monitor="val_total_accuracy"),
        "multitask.monitor: task 'total' (regression) has no metric 'accuracy'; its metrics: mae, rmse, r2",
    ),
    "a label column the data does not have": (
        lambda t: multitask(t, tasks=[{"name": "right", "columns": "rigth"}]),
        "task 'right' reads column 'rigth', which the data does not have (did you mean \"right\"?)",
    ),
    "a label column missing from a csv": (
        lambda t: csv_tasks(t, [{"name": "kind", "columns": "knd"}]),
        "no column 'knd' (did you mean \"kind\"?)",
    ),
    "two tasks with the same name": (
        lambda t: multitask(t, tasks=[{"name": "left", "columns": "left"}, {"name": "left", "columns": "right"}]),
        "multitask: task 'left' is named twice; give each task its own name",
    ),
    "a regression task with words for values": (
        lambda t: csv_tasks(t, [{"name": "size", "columns": "size", "type": "regression"}], value="large"),
        "target 'size': 'large' is not a number; a regression target must be numeric",
    ),
    "a classification task of two columns": (
        lambda t: multitask(t, tasks=[{"name": "both", "columns": ["left", "right"]}]),
        "a classification task reads one label column",
    ),
    "an unknown combination method": (
        lambda t: multitask(t, combine="pcgard"),
        "multitask.combine: unknown combine method 'pcgard' (did you mean \"pcgrad\"?)",
    ),
    "an option the aggregator does not take": (
        lambda t: multitask(t, combine={"name": "mgda", "epsilonn": 0.1}),
        "multitask.combine: combine 'mgda' has no option 'epsilonn' (did you mean \"epsilon\"?); its options: "
        "epsilon, max_iters",
    ),
    "multitask with a continual stream": (
        lambda t: multitask(t, changes={"continual": {"strategies": ["naive"]}}),
        "multitask and continual are two kinds of run; give one of them",
    ),
    "multitask with unlearning": (
        lambda t: multitask(t, changes={"unlearning": {"forget": {"fraction": 0.1}, "methods": ["finetune"]}}),
        "multitask and unlearning are two kinds of run; give one of them",
    ),
    "a student objective the tasks' losses would replace": (
        lambda t: multitask(t, changes={"student.objective": {"name": "kd"}}),
        "multitask: student.objective does not apply to a multi-task run",
    ),
    "data.task beside the tasks' own types": (
        lambda t: multitask(t, {"source": "multidigits", "task": "regression"}),
        "multitask: data.task does not apply to a multi-task run",
    ),
}
