"""The robust plan: the recipe's distillation plan (teachers, the student alone, the distilled student),
each trained stage given the method its role names in the ``robust:`` block as its step, with the method
recorded in the saved model's card. The data's range and the budgets are checked here, before any stage
trains (and by ``--dry-run``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping

from protege.config import Recipe
from protege.console import log
from protege.data.dataset import DataBundle
from protege.plan.distillation import DistillationPlan
from protege.plan.spec import StageResult, StageSpec
from protege.robust.attacks import Attack
from protege.robust.config import RobustConfig, RobustMethodConfig
from protege.robust.methods import build_method
from protege.robust.space import InputSpace, check_budget, input_space

ROLE_METHOD = {"teacher": "teacher", "teacher_member": "teacher", "baseline": "baseline", "student": "student",
               "generation": "student"}  # fmt: skip
"""Which method of the block each role trains with (a hint stage and an ensemble train nothing under attack)."""


def training_attack(config: RobustConfig) -> Attack:
    return Attack(config.epsilon, config.norm, config.steps, config.step_size, config.random_start)


def evaluation_attack(config: RobustConfig) -> Attack:
    """The attack of ``robust_accuracy``: the evaluate block's settings, the training budget and norm by default."""
    evaluate = config.evaluate
    epsilon = evaluate.epsilon if evaluate.epsilon is not None else config.epsilon
    norm = evaluate.norm or config.norm
    return Attack(epsilon, norm, evaluate.steps, evaluate.step_size, evaluate.random_start)


def checked_space(config: RobustConfig, data: DataBundle) -> InputSpace:
    """The data's input space, with both budgets checked against its range (one line each)."""
    space = input_space(data, config.input_range)
    check_budget(space, config.norm, config.epsilon, data.input_shape, "robust.epsilon")
    evaluation = evaluation_attack(config)
    check_budget(space, evaluation.norm, evaluation.epsilon, data.input_shape, "robust.evaluate.epsilon")
    return space


class RobustPlan:
    """Yields the distillation plan's stages, each with its role's robust method as its step."""

    def __init__(self, recipe: Recipe, data: DataBundle):
        assert recipe.robust is not None
        self.config = recipe.robust
        self.inner = DistillationPlan(recipe)
        self.space = checked_space(self.config, data)
        self.attack = training_attack(self.config)

    def stages(self, results: Mapping[str, StageResult]) -> Iterator[StageSpec]:
        log(f"robust: inputs in [{self.space.low:g}, {self.space.high:g}] (raw units"
            f"{', standardised for the model' if self.space.mean is not None else ''})")  # fmt: skip
        for spec in self.inner.stages(results):
            yield self.with_method(spec)

    def method_of(self, spec: StageSpec) -> RobustMethodConfig | None:
        """The method that trains ``spec``, or None for a stage that trains nothing under attack."""
        key = ROLE_METHOD.get(spec.role)
        if key is None or spec.is_ensemble or spec.train is None:
            return None
        return getattr(self.config, key)

    def with_method(self, spec: StageSpec) -> StageSpec:
        method = self.method_of(spec)
        if method is None:
            return spec
        step = build_method(method.name, method.options, self.attack, self.space)
        record = step.describe() if step is not None else {"method": "plain"}
        return dataclasses.replace(spec, step=step, notes={**spec.notes, "robust": record})
