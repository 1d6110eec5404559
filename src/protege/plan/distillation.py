"""Today's recipes as a plan: the teacher(s), the student trained alone (baseline), the ensemble of
several teachers, then the student, distilled, in one or more born-again generations, each preceded by
FitNet's hint stage when its objective asks for one."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from protege.config import Recipe, StageConfig
from protege.objectives import build_objective, check_objective_options
from protege.plan.spec import ObjectiveSpec, StageResult, StageSpec
from protege.tasks import get_task


def student_stage_names(generations: int) -> list[str]:
    """Born-again generations ``student_gen1``..., the last one named ``student`` (the run's final model)."""
    return [f"student_gen{g}" for g in range(1, generations)] + ["student"]


def objective_specs(stage: StageConfig, task: str = "classification") -> tuple[ObjectiveSpec, ...]:
    """The stage's weighted objectives, or the task's default objective when it names none."""
    specs = tuple((o.name, o.options, o.weight) for o in stage.objectives)
    return specs or ((get_task(task).default_objective, {}, 1.0),)


class DistillationPlan:
    """The stages of a recipe in the order they run; each may use the results of those before it."""

    def __init__(self, recipe: Recipe):
        self.recipe = recipe
        self.task = recipe.data.task

    def stages(self, results: Mapping[str, StageResult]) -> Iterator[StageSpec]:
        recipe = self.recipe
        teachers = recipe.teacher_stages
        for name, stage in teachers:
            yield self._trained(name, "teacher" if len(teachers) == 1 else "teacher_member", stage, recipe.seed)
        student = recipe.student
        if student is None:
            return
        baseline = student.baseline_stage()
        if baseline is not None:
            yield self._trained("student_baseline", "baseline", baseline, recipe.seed)
        if len(teachers) > 1:
            yield self._ensemble([name for name, _ in teachers])
        teacher = first_teacher = "teacher" if teachers else None
        names = student_stage_names(student.generations)
        for generation, name in enumerate(names):
            seed = recipe.seed + generation  # born-again generations start from different weights
            role = "student" if name == names[-1] else "generation"
            hint = self._hint(name, student, teacher, seed)
            if hint is not None:
                yield hint
            yield self._trained(name, role, student, seed, teacher, model_from=hint.name if hint else None)
            teacher = name
        for name, further in (recipe.students or {}).items():  # each distils from the teacher, as student does
            hint = self._hint(name, further, first_teacher, recipe.seed)
            if hint is not None:
                yield hint
            yield self._trained(name, "student", further, recipe.seed, first_teacher, hint.name if hint else None)

    def _trained(
        self,
        name: str,
        role: str,
        stage: StageConfig,
        seed: int,
        teacher: str | None = None,
        model_from: str | None = None,
    ) -> StageSpec:
        return StageSpec(
            name=name,
            role=role,  # type: ignore[arg-type]
            model=stage.model,
            train=stage.train,
            objectives=objective_specs(stage, self.task),
            strategy=stage.strategy,
            teacher=teacher,
            model_from=model_from,
            seed=seed,
            transfer=teacher is not None,
            teacher_cache=getattr(stage, "teacher_cache", "auto"),
        )

    def _hint(self, name: str, stage: StageConfig, teacher: str | None, seed: int) -> StageSpec | None:
        """FitNets stage 1 (Romero et al. 2015): only the hint loss, so the layers up to the guided one (and
        the regressor) learn to predict the teacher's hint before the whole student trains."""
        for objective, options, _ in objective_specs(stage, self.task):
            if objective != "fitnet":
                continue
            options = check_objective_options("fitnet", options)
            epochs = options.get("hint_epochs", 0)
            if not epochs or stage.train is None:
                continue
            hint_options = {**build_objective([("fitnet", options, 1.0)]).parts[0].options(), "ce_weight": 0.0}
            return StageSpec(
                name=f"{name}_hint",
                role="hint",
                model=stage.model,
                train=stage.train.model_copy(update={"epochs": epochs, "patience": None}),
                objectives=(("fitnet", hint_options, 1.0),),
                teacher=teacher,
                seed=seed,
                transfer=True,
                teacher_cache=getattr(stage, "teacher_cache", "auto"),
                folder=f"{name}/hint",
                save=False,
                part_of=name,
            )
        return None

    def _ensemble(self, members: list[str]) -> StageSpec:
        """Several teachers as one, their soft targets averaged at the student's distillation temperature."""
        student = self.recipe.student
        assert student is not None
        parts = build_objective(list(objective_specs(student, self.task))).parts
        temperature = next((p.temperature for p in parts if hasattr(p, "temperature")), 1.0)
        weights = tuple(student.teacher_weights or [1.0] * len(members))
        return StageSpec(
            name="teacher",
            role="teacher",
            members=tuple(members),
            weights=weights,
            temperature=temperature,
            save=False,
        )
