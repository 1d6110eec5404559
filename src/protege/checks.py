"""Checks a recipe needs beyond its field types: known names, options that exist, stages that fit."""

from __future__ import annotations

from protege.config import Recipe, StageConfig
from protege.data import SOURCES
from protege.data.transfer import is_transfer_source
from protege.errors import ConfigError, ProtegeError
from protege.models import check_model_options
from protege.objectives import OBJECTIVES, check_objective_options
from protege.transfer import STRATEGIES, check_strategy_options


def check_recipe(recipe: Recipe, origin: str = "recipe") -> None:
    """Raise a one-line ConfigError naming the first problem, before any data is read."""

    def fail(where: str, problem: str | Exception) -> None:
        raise ConfigError(f"{origin}: {where}: {problem}")

    def guard(where: str, check, *args) -> None:
        try:
            check(*args)
        except ProtegeError as exc:
            fail(where, exc)

    guard("data.source", SOURCES.get, recipe.data.source.partition(":")[0])
    if recipe.transfer is not None and not is_transfer_source(recipe.transfer.source):
        guard("transfer.source", SOURCES.get, recipe.transfer.source.partition(":")[0])

    task = recipe.data.task
    if task != "classification" and len(recipe.teacher_stages) > 1:
        fail("teacher", f"several teachers average class probabilities; a {task} task takes one teacher")
    if task != "classification" and recipe.student is not None and recipe.student.generations > 1:
        fail("student.generations", f"born-again generations are for classification, not a {task} task")
    stages: list[tuple[str, StageConfig]] = list(recipe.teacher_stages)
    if recipe.student is not None:
        stages.append(("student", recipe.student))
    distills = False
    for name, stage in stages:
        guard(f"{name}.model", check_model_options, stage.model.source, stage.model.options)
        if stage.train is None and not stage.model.source.startswith("run:"):
            fail(
                f"{name}.train",
                f"model {stage.model.source!r} is built untrained; add a 'train' block or load run:path",
            )
        if stage.strategy is not None:
            if stage.train is None:
                fail(f"{name}.strategy", "a strategy needs a 'train' block (the stage only loads its model)")
            guard(f"{name}.strategy.name", STRATEGIES.get, stage.strategy.name)
            guard(f"{name}.strategy", check_strategy_options, stage.strategy.name, stage.strategy.options)
        for i, spec in enumerate(stage.objectives):
            where = f"{name}.objective" + (f"[{i}]" if isinstance(stage.objective, list) else "")
            guard(f"{where}.name", OBJECTIVES.get, spec.name)
            guard(where, check_objective_options, spec.name, spec.options)
            objective = OBJECTIVES.get(spec.name)
            if task not in objective.tasks:
                fitting = ", ".join(n for n in OBJECTIVES if task in OBJECTIVES.get(n).tasks)
                fail(
                    where,
                    f"{spec.name!r} trains {' or '.join(objective.tasks)} outputs; a {task} task trains with {fitting}",
                )
            if objective.needs_teacher:
                if name.startswith("teacher"):
                    fail(where, f"{spec.name!r} distills from a teacher; the teacher stage trains without one")
                if recipe.teacher is None:
                    fail(where, f"{spec.name!r} needs a teacher: add a 'teacher' stage")
                distills = True
    from protege.models.hf import check_same_inputs

    guard("student.model", check_same_inputs, [(name, stage.model.source) for name, stage in stages])
    if recipe.transfer is not None and not distills:
        fail("transfer", "a transfer set is only used when the student distills from a teacher (e.g. objective: kd)")
    if recipe.student is not None and recipe.student.baseline is True and recipe.student.train is None:
        fail("student.baseline", "a baseline student needs a 'train' block")
    if recipe.student is not None and recipe.student.generations > 1 and not distills:
        fail("student.generations", "born-again generations distil from each other: give the student a kd objective")
