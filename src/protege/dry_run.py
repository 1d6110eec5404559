"""``protege run --dry-run``: what a recipe will do (data sizes, models, objectives, training), doing none of it."""

from __future__ import annotations

from rich.table import Table

from protege.config import Recipe
from protege.console import out_console
from protege.evaluate import count_parameters
from protege.models import build_model
from protege.objectives import OBJECTIVES
from protege.pipeline import load_recipe_data


def describe(recipe: Recipe) -> None:
    """Load the data and build the models (no training) and print the plan."""
    data = load_recipe_data(recipe)
    out_console.print(f"[bold]{recipe.name}[/] (seed {recipe.seed}): {data.describe()}")
    if recipe.transfer is not None:
        out_console.print(f"transfer set: {recipe.transfer.source} {recipe.transfer.options or ''}")
    table = Table(title="stages")
    for column in ("stage", "model", "parameters", "objective", "training"):
        table.add_column(column)
    stages = [("teacher", recipe.teacher), ("student", recipe.student)]
    if recipe.student is not None and recipe.student.baseline_stage() is not None:
        stages.insert(1, ("student_baseline", recipe.student.baseline_stage()))
    for name, stage in stages:
        if stage is None:
            continue
        built = build_model(
            stage.model.source, stage.model.options, data.input_shape, data.class_names, data.preprocess
        )
        objectives = (
            ", ".join(
                f"{o.weight:g}×{o.name}({', '.join(f'{k}={v}' for k, v in o.options.items())})"
                for o in stage.objectives
            )
            or "1×ce()"
        )
        needs_teacher = any(OBJECTIVES.get(o.name).needs_teacher for o in stage.objectives)
        if needs_teacher:
            objectives += f"; teacher cache: {getattr(stage, 'teacher_cache', 'auto')}"
        train = stage.train
        training = (
            f"{train.epochs} epochs, batch {train.batch_size}, {train.optimizer} lr {train.lr:g}, {train.schedule}"
            if train is not None
            else "load only"
        )
        source = stage.model.source + "".join(f" {k}={v}" for k, v in stage.model.options.items())
        table.add_row(name, source, f"{count_parameters(built.module):,}", objectives, training)
    out_console.print(table)
