"""A multi-task recipe end to end: the plan (teachers, then the multi-head student), then the report:
every model evaluated like any model (size, FLOPs, latency), plus per task its test metrics and the
tasks' average score, and the ``multitask`` block comparing the student's heads with their teachers."""

from __future__ import annotations

import torch

from protege.config import Recipe
from protege.data.dataset import DataBundle
from protege.evaluate import predict_logits
from protege.metrics import metrics_of
from protege.multitask.config import MultitaskConfig
from protege.multitask.data import task_specs
from protege.multitask.layout import MEAN_SCORE, SCORE, TaskSpec, split_outputs
from protege.multitask.plan import MultitaskPlan
from protege.plan import StageContext, StageResult, run_plan
from protege.report.summary import assemble_report, read_history


def task_metrics(tasks: list[TaskSpec], outputs: torch.Tensor, y: torch.Tensor) -> dict:
    """Per task every metric of its type on the test split, its score, and the tasks' average score."""
    split = split_outputs(tasks, outputs)
    entry = {}
    for task in tasks:
        values = {m.name: m.compute(split[task.name], task.targets(y)) for m in metrics_of(task.type)}
        entry[task.name] = {**values, "score": values[SCORE[task.type]]}
    return {"tasks": entry, MEAN_SCORE: sum(t["score"] for t in entry.values()) / len(entry)}


def run_multitask(recipe: Recipe, context: StageContext, seconds: float) -> tuple[dict[str, StageResult], dict]:
    """The teachers and the student; returns the stages and the report."""
    assert recipe.multitask is not None
    data = context.data
    plan = MultitaskPlan(recipe, data, task_specs(recipe.multitask, data.class_names))
    stages = run_plan(plan.stages(context.results), context)
    stages = {**{r.name: r for r in plan.loaded.values()}, **stages}
    models = {name: (s.model, s.card, s.model_dir) for name, s in stages.items()}
    roles = {name: s.role for name, s in stages.items()}
    titles = {name: name.replace("_", " ") for name in stages}
    history = read_history(context.run_dir / "metrics.jsonl")
    report = assemble_report(
        models,
        data,
        recipe.evaluate,
        name=recipe.name,
        seed=recipe.seed,
        seconds=seconds,
        titles=titles,
        history=history,
        roles=roles,
    )
    add_multitask_block(report, recipe, {name: (s.model, s.card) for name, s in stages.items()}, data)
    return stages, report


def add_multitask_block(report: dict, recipe: Recipe, models: dict[str, tuple], data: DataBundle) -> None:
    """The report's ``multitask`` block, and each model's average score beside its other numbers."""
    assert recipe.multitask is not None
    tasks = task_specs(recipe.multitask, data.class_names)
    report["multitask"] = multitask_block(recipe.multitask, tasks, models, data)
    for name, block in report["multitask"]["models"].items():
        report["models"][name][MEAN_SCORE] = block[MEAN_SCORE]


def multitask_block(config: MultitaskConfig, tasks: list[TaskSpec], models: dict[str, tuple], data: DataBundle) -> dict:
    """Per model (``{name: (module, card)}``) its tasks' test metrics and average; per task the student's
    score against its teacher's."""
    by_name = {task.name: task for task in tasks}
    scores = {}
    for name, (module, card) in models.items():
        own = (
            [by_name[entry["name"]] for entry in card.tasks] if card.tasks else [by_name[name.removeprefix("teacher_")]]
        )
        scores[name] = task_metrics(own, predict_logits(module, data.test), data.test.y)
    comparison = {}
    for task in tasks:
        teacher = scores.get(f"teacher_{task.name}")
        comparison[task.name] = {
            "student": scores["student"]["tasks"][task.name]["score"] if "student" in scores else None,
            "teacher": teacher["tasks"][task.name]["score"] if teacher else None,
        }
    return {
        "tasks": [task.describe() for task in tasks],
        "score": {task.name: SCORE[task.type] for task in tasks},
        "combine": config.combine.name,
        "combine_options": config.combine.options,
        "monitor": config.monitor,
        "models": scores,
        "student_vs_teachers": comparison,
    }
