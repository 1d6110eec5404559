"""The checks of a ``robust:`` block that need more than its field types: the methods' names and options,
teachers where a method distils, stages whose own objective a method would replace, and inputs no
gradient can change. Each failure is one line naming the field (through protege.checks)."""

from __future__ import annotations

from typing import Protocol

from protege.config import Recipe, StageConfig
from protege.robust.methods import ROBUST_METHODS, needs_teacher

ROLES = ("teacher", "baseline", "student")


class Checks(Protocol):
    def fail(self, where: str, problem: str | Exception) -> None: ...

    def guard(self, where: str, check, *args) -> None: ...


def check_robust(checks: Checks, recipe: Recipe) -> None:
    """Raise (through ``checks``) on the first problem of ``recipe``'s robust block."""
    config = recipe.robust
    assert config is not None
    for block, kind in (("continual", "a continual stream"), ("unlearning", "an unlearning run")):
        if getattr(recipe, block) is not None:
            checks.fail("robust", f"adversarial training runs a recipe's teacher and student stages, not {kind}; "
                        f"remove robust or {block}")  # fmt: skip
    if recipe.data.task != "classification":
        checks.fail("robust", f"attacks and robust accuracy are for classification; data.task is {recipe.data.task!r}")
    for role in ROLES:
        method = getattr(config, role)
        checks.guard(f"robust.{role}.name", ROBUST_METHODS.get, method.name)
        checks.guard(f"robust.{role}", ROBUST_METHODS.check_options, method.name, method.options)
        if role != "student" and needs_teacher(method.name):
            checks.fail(f"robust.{role}", f"{method.name!r} distils from a robust teacher, and the {role} trains "
                        "without one: use pgd, trades or plain")  # fmt: skip
    if needs_teacher(config.student.name) and recipe.teacher is None:
        checks.fail("robust.student", f"{config.student.name!r} distils from a robust teacher: add a teacher stage, "
                    "or use pgd, trades or plain")  # fmt: skip
    student = recipe.student
    if "baseline" in config.model_fields_set and (student is None or student.baseline is False):
        checks.fail("robust.baseline", "the recipe trains no student alone: set student.baseline: true, or remove "
                    "robust.baseline")  # fmt: skip
    stages = [(name, "teacher", stage) for name, stage in recipe.teacher_stages]
    stages += [("student", "student", student)] if student is not None else []
    for name, role, stage in stages:
        _check_stage(checks, name, getattr(config, role).name, role, stage)


def _check_stage(checks: Checks, name: str, method: str, role: str, stage: StageConfig) -> None:
    """A stage trained under attack reads numbers, and its method's loss takes the place of its objective."""
    if stage.model.source.startswith("hf:"):
        checks.fail(f"{name}.model", f"{stage.model.source!r} reads token ids, and a gradient attack changes "
                    "numbers, not tokens: adversarial training needs numeric or image inputs")  # fmt: skip
    if method == "plain" or stage.train is None:
        return
    objectives = stage.objectives
    plain_ce = len(objectives) == 1 and objectives[0].name == "ce" and not objectives[0].options
    if not plain_ce or objectives[0].weight != 1:
        named = ", ".join(o.name for o in objectives) or "none"
        checks.fail(f"{name}.objective", f"robust.{role} {method!r} trains with its own loss, so the objective "
                    f"({named}) would not be used: remove it, or set robust.{role}: plain")  # fmt: skip
