"""The multi-task plan: with a ``teacher:`` block, one single-task teacher per task (``teacher_<task>``,
trained with the block's model and settings, or loaded from ``multitask.teacher_sources``), then the
multi-head ``student`` on every task at once, combined as the recipe says and, with teachers, each head
distilled from its own teacher."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from protege.config import Recipe
from protege.console import log
from protege.data.dataset import DataBundle
from protege.models import build_model
from protege.models.compatibility import check_inputs
from protege.multitask.combine import Combine
from protege.multitask.layout import TaskSpec, multitask_type, output_names
from protege.multitask.steps import Distillation, MultiTaskStep
from protege.multitask.teachers import check_teacher, in_task_order
from protege.plan.spec import StageResult, StageSpec


def teacher_stage(task: str) -> str:
    return f"teacher_{task}"


class MultitaskPlan:
    """Yields the teachers' stages (one per task), then the student's; ``loaded`` keeps teachers given as
    saved models, which are no stage of this run."""

    def __init__(self, recipe: Recipe, data: DataBundle, tasks: list[TaskSpec]):
        assert recipe.multitask is not None and recipe.student is not None
        self.recipe, self.data, self.tasks = recipe, data, tasks
        self.config = recipe.multitask
        self.loaded: dict[str, StageResult] = {}

    def stages(self, results: Mapping[str, StageResult]) -> Iterator[StageSpec]:
        recipe = self.recipe
        # saved teachers first: one that does not fit its task stops the run before any teacher trains
        saved = {t.name: self.load_teacher(t).model for t in self.tasks if t.name in self.config.teacher_sources}
        teachers = {}
        if recipe.teacher is not None:
            for task in self.tasks:
                if task.name in saved:
                    teachers[task.name] = saved[task.name]
                    continue
                yield self.single_task(teacher_stage(task.name), "teacher_member", task)
                trained = results.get(teacher_stage(task.name))  # absent in a dry run, which trains nothing
                teachers[task.name] = trained.model if trained is not None else None
        yield self.student(teachers)

    def single_task(self, name: str, role: str, task: TaskSpec) -> StageSpec:
        """A model of one task: the teacher block's model with one head, trained on its labels alone."""
        stage = self.recipe.teacher
        assert stage is not None
        return StageSpec(
            name,
            role,
            model=stage.model,
            train=stage.train,
            seed=self.recipe.seed,
            class_names=tuple(output_names([task])),
            step=MultiTaskStep([task], Combine("equal", {}, [task.name])),
            heads=(task.describe(),),
            task=multitask_type([task]),
        )

    def student(self, teachers: dict) -> StageSpec:
        """The multi-head student on every task, each head from its teacher's slice when there are teachers."""
        student, config = self.recipe.student, self.config
        combine = Combine(config.combine.name, config.combine.options, [t.name for t in self.tasks])
        distillation = Distillation(config.alpha, config.temperature) if teachers else None
        step = MultiTaskStep(self.tasks, combine, distillation)
        return StageSpec(
            "student",
            "student",
            model=student.model,
            train=student.train,
            seed=self.recipe.seed,
            class_names=tuple(output_names(self.tasks)),
            step=step,
            teacher_module=in_task_order(self.tasks, teachers) if teachers and all(teachers.values()) else None,
            teacher_cache=student.teacher_cache,
            heads=tuple(t.describe() for t in self.tasks),
            task=multitask_type(self.tasks, config.monitor),
            notes={"multitask": {"combine": config.combine.name, "distilled": bool(teachers)}},
        )

    def load_teacher(self, task: TaskSpec) -> StageResult:
        """A saved single-task model as the task's teacher, checked against the task's outputs."""
        source = self.config.teacher_sources[task.name]
        built = build_model(source, {}, self.data.input_shape, None)
        who = f"{teacher_stage(task.name)} {source}"
        # same features and standardisation, no test leak; its outputs are checked against the task's instead
        # of the data's task type (a plain classifier may teach a classification task)
        own_task = {**self.data.split, "task": built.card.data.get("task", "classification")}
        check_inputs(built.card, self.data.preprocess, own_task, who)
        check_teacher(task, built.card, source)
        log(f"[bold]{teacher_stage(task.name)}[/]: loaded {source}")
        result = StageResult(teacher_stage(task.name), built.module.eval(), built.card, role="teacher_member")
        self.loaded[task.name] = result
        return result
