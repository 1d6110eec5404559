"""``protege run --dry-run``: what a recipe will do (data sizes, models, objectives, training), doing none of it."""

from __future__ import annotations

from rich.table import Table
from torch import nn

from protege.config import Recipe, StrategyConfig, TrainConfig
from protege.console import out_console
from protege.evaluate import count_parameters
from protege.models import build_model, with_card_heads
from protege.models.compatibility import check_inputs, check_saved_task
from protege.objectives import OBJECTIVES
from protege.pipeline import check_augmentations, load_recipe_views, load_transfer_set, recipe_plan
from protege.plan import StageSpec
from protege.transfer import build_strategy
from protege.transfer.base import group_rows


def describe(recipe: Recipe) -> None:
    """Load the data and build the models (no training) and print the plan: every stage it yields, in order."""
    data, views = load_recipe_views(recipe)
    out_console.print(f"[bold]{recipe.name}[/] (seed {recipe.seed}): {data.describe()}, task {data.task}")
    if views is not None and len(views) > 1:
        out_console.print(f"views: {len(views)} encodings of the same examples, each model reads its own")
    transfer_set = load_transfer_set(recipe, data, views)
    check_augmentations(recipe, data, views)
    if recipe.transfer is not None and transfer_set is not None:
        options = recipe.transfer.options or ""
        kind = "texts" if transfer_set.texts is not None else "inputs"
        out_console.print(f"transfer set: {len(transfer_set)} unlabeled {kind} from {recipe.transfer.source} {options}")
    if recipe.continual is not None:
        from protege.continual.run import describe_plan

        for table in describe_plan(recipe, data):
            out_console.print(table)
        return
    if recipe.unlearning is not None:
        out_console.print(_unlearning_plan(recipe, data))
        return
    if recipe.adaptation is not None:
        from protege.adaptation.run import describe_plan as adaptation_plan

        for table in adaptation_plan(recipe, data):
            out_console.print(table)
        return
    table = Table(title="stages")
    group_tables = []
    for column in ("stage", "role", "model", "parameters", "objective", "training"):
        table.add_column(column)
    built_models: dict[str, object] = {}
    for spec in recipe_plan(recipe, data).stages({}):
        view = views.for_model(spec.model.source, spec.model.options) if views is not None and spec.model else data
        row, groups = _stage_row(spec, view, built_models)
        table.add_row(*row)
        group_tables += groups
    out_console.print(table)
    for group_table in group_tables:
        out_console.print(group_table)


def _stage_row(spec: StageSpec, data, built_models: dict) -> tuple[list[str], list[Table]]:
    """One stage of the plan as a table row (its model built, checked against the data, and counted), and
    its strategy's parameter groups."""
    if spec.is_ensemble:
        members = ", ".join(spec.members)
        return [spec.name, spec.role, f"ensemble of {members}", "–", f"soft targets at T={spec.temperature:g}", "–"], []
    if spec.model_from is not None:
        module, source = built_models[spec.model_from], f"continues {spec.model_from}"
    else:
        assert spec.model is not None
        check_saved_task(spec.model.source, data.task, f"{spec.name} {spec.model.source}")
        names = list(spec.class_names) if spec.class_names is not None else data.class_names
        built = build_model(spec.model.source, spec.model.options, data.input_shape, names, data.preprocess)
        if spec.heads and not built.card.tasks:  # a multi-head model (protege.multitask)
            built.card.tasks = [dict(task) for task in spec.heads]
            with_card_heads(built.module, built.card)
        if built.trained:  # what the run refuses for a saved model, the dry run refuses too
            check_inputs(built.card, data.preprocess, data.split, f"{spec.name} {spec.model.source}")
        module = built.module
        source = spec.model.source + "".join(f" {k}={v}" for k, v in spec.model.options.items())
    built_models[spec.name] = module
    objectives = ", ".join(
        f"{weight:g}×{name}({', '.join(f'{k}={v}' for k, v in options.items())})"
        for name, options, weight in spec.objectives
    )
    needs_teacher = any(OBJECTIVES.get(name).needs_teacher for name, _, _ in spec.objectives)
    if spec.step is not None:  # a step of its own (robust, multitask) trains with its loss, not the objectives
        objectives, needs_teacher = getattr(spec.step, "summary", type(spec.step).__name__), spec.step.needs_teacher
    train = spec.train
    if needs_teacher:
        cache = spec.teacher_cache
        if train is not None and train.augment:
            views = train.augment_views
            cache = f"{cache}, on {views} augmented views per example" if views else "online (augmented batches)"
        objectives += f"; teacher {spec.teacher or 'one per head'}, cache: {cache}"
    training = "load only"
    if train is not None:
        training = (
            f"{train.epochs} epochs, batch {train.batch_size}, {train.optimizer} lr {train.lr:g}, {train.schedule}"
        )
        if train.augment:
            training += f"; augment {', '.join(entry.name for entry in train.augment)}"
            if train.augment_views is not None:
                training += f" ({train.augment_views} cached views, cycled by epoch)"
    parameters = f"{count_parameters(module):,}"  # before a strategy adds adapters
    groups = []
    if spec.strategy is not None and train is not None:
        training += f"; strategy {spec.strategy.name}"
        groups.append(strategy_table(spec.name, spec.strategy, module, train))
    return [spec.name, spec.role, source, parameters, objectives, training], groups


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


def _unlearning_plan(recipe: Recipe, data) -> Table:
    """``--dry-run`` of an unlearning recipe: the request resolved, then the stages in order."""
    from protege.unlearning.forget_set import forget_positions

    config = recipe.unlearning
    assert config is not None and recipe.student is not None and recipe.student.train is not None
    positions, how = forget_positions(data, config.forget, recipe.seed)
    out_console.print(f"forget: {how}; {len(data.train) - len(positions)} retained")
    table = Table(title="stages")
    for column in ("stage", "starts from", "trains on", "epochs"):
        table.add_column(column)
    epochs = recipe.student.train.epochs
    table.add_row("original", recipe.student.model.source, f"all {len(data.train)} training examples", str(epochs))
    table.add_row(
        "retrained", recipe.student.model.source, f"the {len(data.train) - len(positions)} retained", str(epochs)
    )
    from protege.unlearning.methods import METHODS

    for method in config.methods:
        table.add_row(method.name, "original", METHODS.get(method.name).trains_on, str(config.epochs))
    if config.sisa is not None:
        sisa = config.sisa
        table.add_row(f"sisa ({sisa.shards} shards × {sisa.slices} slices)", recipe.student.model.source,
                      "each shard slice by slice; then the touched shards again", str(sisa.epochs_per_slice or
                      max(1, epochs // sisa.slices)) + " per slice")  # fmt: skip
    return table
