"""Checks a recipe needs beyond its field types: known names, options that exist, stages that fit."""

from __future__ import annotations

from protege.config import Recipe, StageConfig, TrainConfig
from protege.data import SOURCES
from protege.data.transfer import is_transfer_source, shares_one_view
from protege.errors import ConfigError, ProtegeError
from protege.models import check_model_options
from protege.objectives import OBJECTIVES, check_objective_options
from protege.transfer import STRATEGIES, check_strategy_options


def check_recipe(recipe: Recipe, origin: str = "recipe") -> None:
    """Raise a one-line ConfigError naming the first problem, before any data is read."""
    checks = _Checks(origin)
    checks.guard("data.source", SOURCES.get, recipe.data.source.partition(":")[0])
    if recipe.transfer is not None and not is_transfer_source(recipe.transfer.source):
        checks.guard("transfer.source", SOURCES.get, recipe.transfer.source.partition(":")[0])
    task = recipe.data.task
    if task != "classification" and len(recipe.teacher_stages) > 1:
        checks.fail("teacher", f"several teachers average class probabilities; a {task} task takes one teacher")
    if task != "classification" and recipe.student is not None and recipe.student.generations > 1:
        checks.fail("student.generations", f"born-again generations are for classification, not a {task} task")
    stages: list[tuple[str, StageConfig]] = recipe.stages
    distills = False
    for name, stage in stages:
        checks.stage(name, stage)
        checks.augment(name, stage, recipe)
        distills |= checks.objectives(name, stage, task, has_teacher=recipe.teacher is not None)
    why = one_view_needed(recipe)
    if why is not None:
        from protege.models.hf import check_same_inputs

        models = [(name, stage.model.source) for name, stage in stages]
        checks.guard("student.model", check_same_inputs, models, why)
    if recipe.transfer is not None and not distills:
        checks.fail(
            "transfer", "a transfer set is only used when the student distills from a teacher (e.g. objective: kd)"
        )
    if recipe.continual is not None:
        _check_continual(checks, recipe)
    if recipe.robust is not None:
        from protege.robust.checks import check_robust

        check_robust(checks, recipe)
    if recipe.multitask is not None:
        from protege.multitask.checks import check_multitask

        check_multitask(checks, recipe)
    if recipe.unlearning is not None:
        from protege.unlearning.methods import METHODS

        for i, method in enumerate(recipe.unlearning.methods):
            checks.guard(f"unlearning.methods[{i}].name", METHODS.get, method.name)
            checks.guard(f"unlearning.methods[{i}]", METHODS.check_options, method.name, method.options)
    if recipe.adaptation is not None:
        from protege.adaptation.checks import check_adaptation

        check_adaptation(checks, recipe)
    student = recipe.student
    if student is not None and student.baseline is True and student.train is None:
        checks.fail("student.baseline", "a baseline student needs a 'train' block")
    if student is not None and student.generations > 1 and not distills:
        checks.fail(
            "student.generations", "born-again generations distil from each other: give the student a kd objective"
        )


AUGMENT_REFUSED = ("continual", "multitask", "unlearning", "adaptation")
"""Recipe blocks whose plans compose or compare the training batches themselves: no ``train.augment`` yet."""


def _check_continual(checks: _Checks, recipe: Recipe) -> None:
    """Each continual strategy's name and options."""
    from protege.continual.strategies import CONTINUAL_STRATEGIES
    from protege.continual.strategies.base import check_scenario

    assert recipe.continual is not None
    for i, strategy in enumerate(recipe.continual.strategies):
        where = f"continual.strategies[{i}]"
        checks.guard(f"{where}.name", CONTINUAL_STRATEGIES.get, strategy.name)
        checks.guard(where, CONTINUAL_STRATEGIES.check_options, strategy.name, strategy.options)
        checks.guard(where, check_scenario, CONTINUAL_STRATEGIES.get(strategy.name), recipe.continual.scenario)


def one_view_needed(recipe: Recipe) -> str | None:
    """Why every stage of ``recipe`` must read the examples the same way (None: each may read its own view,
    protege.data.views): a mixup transfer set mixes one view's inputs, an ensemble feeds its teachers one
    input, and the other paradigms' plans share one set of tensors. A transfer set of texts is encoded by
    each view."""
    blocks = ("continual", "multitask", "unlearning", "adaptation", "robust")
    block = next((name for name in blocks if getattr(recipe, name) is not None), None)
    if block is not None:
        return f"with a {block} block"
    if recipe.transfer is not None and shares_one_view(recipe.transfer.source):
        return f"with a {recipe.transfer.source} transfer set"
    if len(recipe.teacher_stages) > 1:
        return "with several teachers"
    return None


class _Checks:
    """The checks of one recipe, each failure one line that names the recipe and the field."""

    def __init__(self, origin: str):
        self.origin = origin

    def fail(self, where: str, problem: str | Exception) -> None:
        raise ConfigError(f"{self.origin}: {where}: {problem}")

    def guard(self, where: str, check, *args) -> None:
        try:
            check(*args)
        except ProtegeError as exc:
            self.fail(where, exc)

    def stage(self, name: str, stage: StageConfig) -> None:
        """The stage's model source and options, its train block, its strategy."""
        self.guard(f"{name}.model", check_model_options, stage.model.source, stage.model.options)
        if stage.model.source.startswith("hf:"):
            from protege.models.hf import check_cut

            options = check_model_options(stage.model.source, stage.model.options)
            self.guard(f"{name}.model", check_cut, stage.model.source, options)
        if stage.train is None and not stage.model.source.startswith("run:"):
            self.fail(
                f"{name}.train",
                f"model {stage.model.source!r} is built untrained; add a 'train' block or load run:path",
            )
        source = stage.model.source
        if stage.train is not None and stage.train.group_by_length and not source.startswith(("hf:", "run:")):
            self.fail(
                f"{name}.train.group_by_length",
                f"groups texts by token count for a Hugging Face model (hf:); {source} reads whole inputs, "
                "remove group_by_length",
            )
        if stage.strategy is not None:
            if stage.train is None:
                self.fail(f"{name}.strategy", "a strategy needs a 'train' block (the stage only loads its model)")
            self.guard(f"{name}.strategy.name", STRATEGIES.get, stage.strategy.name)
            self.guard(f"{name}.strategy", check_strategy_options, stage.strategy.name, stage.strategy.options)

    def augment(self, name: str, stage: StageConfig, recipe: Recipe) -> None:
        """The augmentations of the stage's train blocks (its own and its baseline's): names, options, at
        most one that mixes the batch; none where a paradigm's plan composes the batches itself."""
        from protege.data.augment import check_entries

        baseline = getattr(stage, "baseline", None)
        blocks = [(f"{name}.train", stage.train), (f"{name}.baseline", baseline)]
        for where, train in blocks:
            if isinstance(train, TrainConfig) and train.augment_views is not None and not train.augment:
                self.fail(f"{where}.augment_views", "caches augmented views of each example; give train.augment too")
            if not isinstance(train, TrainConfig) or not train.augment:
                continue
            block = next((b for b in AUGMENT_REFUSED if getattr(recipe, b) is not None), None)
            if block is not None:
                self.fail(f"{where}.augment", f"augmentation is not supported with a {block} block yet; remove it")
            try:
                mixing = check_entries(train.augment, recipe.data.task, f"{where}.augment")
            except ProtegeError as exc:
                raise ConfigError(f"{self.origin}: {exc}") from None
            if mixing is not None and train.augment_views is not None:
                self.fail(f"{where}.augment_views", f"{mixing} mixes each batch anew, which no cached view of one "
                          "example can hold; remove it, or remove augment_views")  # fmt: skip
            if mixing is not None and recipe.robust is not None:
                self.fail(f"{where}.augment", f"{mixing}'s soft targets do not fit the robust block's attacks, which "
                          "read class ids; keep the per-example augmentations")  # fmt: skip

    def objectives(self, name: str, stage: StageConfig, task: str, has_teacher: bool) -> bool:
        """Each objective's name, options, task and teacher; True when one distils from a teacher."""
        distills = False
        for i, spec in enumerate(stage.objectives):
            where = f"{name}.objective" + (f"[{i}]" if isinstance(stage.objective, list) else "")
            self.guard(f"{where}.name", OBJECTIVES.get, spec.name)
            self.guard(where, check_objective_options, spec.name, spec.options)
            objective = OBJECTIVES.get(spec.name)
            if task not in objective.tasks:
                fitting = ", ".join(n for n in OBJECTIVES if task in OBJECTIVES.get(n).tasks)
                kinds = " or ".join(objective.tasks)
                self.fail(where, f"{spec.name!r} trains {kinds} outputs; a {task} task trains with {fitting}")
            if objective.needs_teacher:
                if name.startswith("teacher"):
                    self.fail(where, f"{spec.name!r} distills from a teacher; the teacher stage trains without one")
                if not has_teacher:
                    self.fail(where, f"{spec.name!r} needs a teacher: add a 'teacher' stage")
                distills = True
        return distills
