"""``protege run --dry-run``: what a recipe will do (data sizes, models, objectives, training), doing none of it."""

from __future__ import annotations

from rich.table import Table
from torch import nn

from protege.config import Recipe, StrategyConfig, TrainConfig
from protege.console import out_console
from protege.evaluate import count_parameters
from protege.models import build_model
from protege.models.compatibility import check_inputs
from protege.objectives import OBJECTIVES
from protege.pipeline import load_recipe_data, load_transfer_set, student_stage_names
from protege.transfer import build_strategy
from protege.transfer.base import group_rows


def describe(recipe: Recipe) -> None:
    """Load the data and build the models (no training) and print the plan."""
    data = load_recipe_data(recipe)
    out_console.print(f"[bold]{recipe.name}[/] (seed {recipe.seed}): {data.describe()}")
    transfer_set = load_transfer_set(recipe, data)
    if recipe.transfer is not None and transfer_set is not None:
        options = recipe.transfer.options or ""
        out_console.print(f"transfer set: {len(transfer_set)} unlabeled inputs from {recipe.transfer.source} {options}")
    table = Table(title="stages")
    group_tables = []
    for column in ("stage", "model", "parameters", "objective", "training"):
        table.add_column(column)
    stages: list = list(recipe.teacher_stages)
    if recipe.student is not None:
        if recipe.student.baseline_stage() is not None:
            stages.append(("student_baseline", recipe.student.baseline_stage()))
        stages += [(name, recipe.student) for name in student_stage_names(recipe.student.generations)]
    for name, stage in stages:
        built = build_model(
            stage.model.source, stage.model.options, data.input_shape, data.class_names, data.preprocess
        )
        if built.trained:  # what the run refuses for a saved model, the dry run refuses too
            check_inputs(built.card, data.preprocess, data.split, f"{name} {stage.model.source}")
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
        parameters = f"{count_parameters(built.module):,}"  # before a strategy adds adapters
        if stage.strategy is not None and train is not None:
            training += f"; strategy {stage.strategy.name}"
            group_tables.append(strategy_table(name, stage.strategy, built.module, train))
        table.add_row(name, source, parameters, objectives, training)
    out_console.print(table)
    for group_table in group_tables:
        out_console.print(group_table)


def strategy_table(stage: str, config: StrategyConfig, model: nn.Module, train: TrainConfig) -> Table:
    """The strategy's parameter groups: size, trainable parameters in the first epoch, lr, when each trains."""
    strategy = build_strategy(config.name, config.options)
    strategy.prepare(model)
    strategy.start_epoch(0)
    split = strategy.split
    table = Table(title=f"{stage}: {config.name}", caption=f"head: {split.head_path}; blocks: {split.blocks_from}")
    for column in ("group", "parameters", "trainable (epoch 1)", "lr", "trains"):
        table.add_column(column)
    for group, size, trainable, lr, when in group_rows(strategy, train.lr, train.epochs):
        table.add_row(group, f"{size:,}", f"{trainable:,}", f"{lr:.3g}", when)
    return table
