"""The checks of a ``multitask:`` block that need more than its field types: the combination method and its
options, the tasks a teacher or the monitor names, and settings a gradient method cannot honour. Each
failure is one line naming the field (through protege.checks)."""

from __future__ import annotations

from typing import Protocol

from protege.config import Recipe
from protege.errors import did_you_mean
from protege.multitask.combine import check_combine
from protege.multitask.config import GRADIENT_METHODS, MultitaskConfig
from protege.multitask.layout import MEAN_SCORE
from protege.tasks import TASKS


class Checks(Protocol):
    def fail(self, where: str, problem: str | Exception) -> None: ...

    def guard(self, where: str, check, *args) -> None: ...


def valid_monitors(config: MultitaskConfig) -> list[str]:
    """What ``multitask.monitor`` may name: the loss, the average score, each task's validation metrics."""
    per_task = [f"val_{task.name}_{m}" for task in config.tasks for m in TASKS[task.type].val_metrics]
    return ["val_loss", f"val_{MEAN_SCORE}", *per_task]


def check_multitask(checks: Checks, recipe: Recipe) -> None:
    """Raise (through ``checks``) on the first problem of ``recipe``'s multitask block."""
    config = recipe.multitask
    assert config is not None and recipe.student is not None
    checks.guard("multitask.combine", check_combine, config.combine.name, config.combine.options)
    for name, source in config.teacher_sources.items():
        if name not in config.names:
            checks.fail(
                f"multitask.teacher_sources.{name}",
                f"no task is named {name!r}{did_you_mean(name, config.names)}; tasks: {', '.join(config.names)}",
            )
        if not source.startswith("run:"):
            checks.fail(f"multitask.teacher_sources.{name}", f"{source!r} is not a saved model; give run:path")
    _check_monitor(checks, config)
    if config.combine.name in GRADIENT_METHODS and recipe.student.train.mixed_precision == "fp16":
        checks.fail(
            "student.train.mixed_precision",
            f"combine {config.combine.name!r} aggregates gradients without fp16's loss scaler; use bf16 or no",
        )


def _check_monitor(checks: Checks, config: MultitaskConfig) -> None:
    """The monitor names the loss, the average, or a task's metric: an unknown task or metric is named."""
    valid = valid_monitors(config)
    if config.monitor in valid:
        return
    wanted = config.monitor.removeprefix("val_")
    task = next((t for t in config.tasks if wanted.startswith(f"{t.name}_")), None)
    if task is not None:
        metrics = TASKS[task.type].val_metrics
        metric = wanted.removeprefix(f"{task.name}_")
        checks.fail("multitask.monitor", f"task {task.name!r} ({task.type}) has no metric {metric!r}"
                    f"{did_you_mean(metric, metrics)}; its metrics: {', '.join(metrics)}")  # fmt: skip
    named = wanted.partition("_")[0]
    checks.fail("multitask.monitor", f"{config.monitor!r} is not measured (no task is named {named!r})"
                f"{did_you_mean(config.monitor, valid)}; valid: {', '.join(valid)}")  # fmt: skip
