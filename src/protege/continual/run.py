"""A continual recipe end to end: the stream, the plan of experience stages, and the report (each
strategy's final model evaluated like any model, plus the ``continual`` block of stream measures)."""

from __future__ import annotations

from rich.table import Table

from protege.config import Recipe
from protege.console import log
from protege.continual.plan import ContinualPlan
from protege.continual.strategies import build_continual_strategy
from protege.continual.streams import Stream, build_stream, join
from protege.data.dataset import DataBundle
from protege.plan import StageContext, StageResult, run_plan
from protege.report.summary import assemble_report


def run_continual(recipe: Recipe, context: StageContext, seconds_so_far: float) -> tuple[dict[str, StageResult], dict]:
    """Every strategy through the stream; returns each strategy's final stage and the report."""
    assert recipe.continual is not None
    stream = build_stream(context.data, recipe.continual, recipe.seed)
    log(f"stream: {describe_stream(stream)}")
    context.data = stream.data  # every stage reads the classes in arrival order
    plan = ContinualPlan(recipe, stream, context)
    run_plan(plan.stages(context.results), context)
    finals = {name: record.final for name, record in plan.records.items() if record.final is not None}
    models = {name: (plan.records[name].classifier, final.card, final.model_dir) for name, final in finals.items()}
    report = assemble_report(
        models,
        whole_stream(stream),
        recipe.evaluate,
        name=recipe.name,
        seed=recipe.seed,
        seconds=seconds_so_far,
        titles={name: name for name in models},
        roles={name: "student" for name in models},
    )
    report["continual"] = plan.summary()
    return finals, report


def whole_stream(stream: Stream) -> DataBundle:
    """The data the final models are evaluated on: every experience's test split."""
    data = stream.data
    test = join([e.test for e in stream.experiences])
    return DataBundle(
        data.train, test, data.val, stream.class_names, data.source, data.preprocess, data.text_encoder,
        None, data.task, data.split,
    )  # fmt: skip


def describe_stream(stream: Stream) -> str:
    sizes = ", ".join(str(len(e.train)) for e in stream.experiences)
    if stream.grows:
        classes = " | ".join(" ".join(stream.class_names[c] for c in e.classes) for e in stream.experiences)
        return f"{stream.scenario}, {len(stream.experiences)} experiences (classes {classes}; train sizes {sizes})"
    return f"{stream.scenario}, {len(stream.experiences)} experiences of every class (train sizes {sizes})"


def describe_plan(recipe: Recipe, data: DataBundle) -> list[Table]:
    """``--dry-run`` of a continual recipe: the stream's experiences, then each strategy's stages."""
    assert recipe.continual is not None and recipe.student is not None
    stream = build_stream(data, recipe.continual, recipe.seed)
    experiences = Table(title=f"stream: {stream.scenario.replace('_', '-')}")
    for column in ("experience", "classes", "train", "val", "test", "outputs after"):
        experiences.add_column(column)
    for e in stream.experiences:
        classes = " ".join(stream.class_names[c] for c in e.classes) if stream.grows else "all"
        val = str(len(e.val)) if e.val is not None else "0"
        outputs = str(len(stream.known_classes(e.number)))
        experiences.add_row(e.name, classes, str(len(e.train)), val, str(len(e.test)), outputs)
    strategies = Table(title=f"strategies (each {len(stream.experiences)} stages: <strategy>_exp1 ...)")
    for column in ("strategy", "options", "teacher", "model", "training"):
        strategies.add_column(column)
    train, model = recipe.student.train, recipe.student.model
    assert train is not None
    for config in recipe.continual.strategies:
        strategy = build_continual_strategy(config.name, config.options)
        options = ", ".join(f"{k}={v}" for k, v in config.options.items()) or "defaults"
        teacher = "the previous experience's model" if strategy.previous_as_teacher else "–"
        source = model.source + "".join(f" {k}={v}" for k, v in model.options.items())
        training = f"{train.epochs} epochs per experience, batch {train.batch_size}, {train.optimizer} lr {train.lr:g}"
        strategies.add_row(config.name, options, teacher, source, training)
    return [experiences, strategies]
