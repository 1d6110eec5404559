"""Runs a plan's stages into one run directory: each stage builds (or loads, or continues) its model,
trains it with the one loop when it has a ``train`` block, and saves it under ``<folder>/model``.
With ``resume``, finished stages are loaded and the interrupted one continues from its checkpoint."""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from accelerate.utils import set_seed
from torch.utils.data import Dataset

from protege.config import TrainConfig
from protege.console import log
from protege.data.dataset import ArrayDataset, DataBundle, concat
from protege.data.transfer import TransferSet
from protege.data.views import Views, with_teacher_view
from protege.distill.ensemble import EnsembleTeacher
from protege.distributed import is_main_process, wait_for_everyone
from protege.engine import FitResult, fit
from protege.errors import ConfigError
from protege.models import (
    BuiltModel,
    ModelCard,
    build_model,
    resolve_run_path,
    save_model,
    trusts_remote_code,
    with_card_heads,
)
from protege.models.compatibility import check_inputs, check_saved_task, check_task_free
from protege.models.growth import grow_classes
from protege.objectives import build_objective
from protege.plan.spec import StageResult, StageSpec
from protege.transfer import build_strategy, save_trained_part

ENSEMBLE = "ensemble"
"""The architecture name the report gives several teachers averaged into one."""


@dataclass
class StageContext:
    """What every stage of one run shares: the data, the transfer set, where to write, the results so far."""

    data: DataBundle
    run_dir: Path
    resume: bool = False
    transfer_set: TransferSet | None = None
    on_epoch: list[Callable[[dict], None]] = field(default_factory=list)
    results: dict[str, StageResult] = field(default_factory=dict)
    cleared: set[str] = field(default_factory=set)
    """Folders this process has started afresh (a stage and its hint stage share one)."""
    views: Views | None = None
    """Each model's view of the examples (protege.data.views), where stages may read their own; else every
    stage reads ``data``."""
    teacher_outputs: dict = field(default_factory=dict)
    """Cached teacher outputs shared by the stages that distil from one teacher on the same examples."""


def stage_data(spec: StageSpec, context: StageContext) -> DataBundle:
    """The view of the examples the stage's model reads: its own encoder's (a continued model: the one it
    read before), or the run's data where every stage shares one."""
    if spec.model_from is not None:
        return context.results[spec.model_from].data or context.data
    if context.views is None or spec.model is None:
        return context.data
    return context.views.for_model(spec.model.source, spec.model.options)


def run_plan(specs: Iterable[StageSpec], context: StageContext) -> dict[str, StageResult]:
    """Every stage the plan yields, in order; each result is visible to the plan before it yields the next."""
    for spec in specs:
        result = run_stage(spec, context)
        if result is not None:
            context.results[spec.name] = result
    return context.results


def run_stage(spec: StageSpec, context: StageContext) -> StageResult | None:
    """One stage: an ensemble of earlier ones, a saved model loaded, or a model trained and saved. None for
    a stage that is part of one already finished (nothing to do on resume)."""
    if spec.is_ensemble:
        return ensemble(spec, context)
    folder = context.run_dir / spec.workdir
    if context.resume and spec.part_of is not None and _finished(context.run_dir / spec.part_of):
        return None
    if context.resume and spec.save and _finished(folder):
        return _reload(spec, context, folder / "model")
    built = _model(spec, context)
    if spec.train is None:
        log(f"[bold]{spec.name}[/]: loaded {spec.model.source}")
        model_dir = resolve_run_path(spec.model.source)
        return StageResult(
            spec.name, built.module, built.card, model_dir=model_dir, role=spec.role, data=stage_data(spec, context)
        )
    return _train(spec, context, built, folder)


def _finished(folder: Path) -> bool:
    return (folder / "model" / "model.json").is_file()


def _reload(spec: StageSpec, context: StageContext, model_dir: Path) -> StageResult:
    # the recipe being resumed is the user's: its permission for the model's code carries over
    trust = {"trust_remote_code": True} if spec.model is not None and trusts_remote_code(spec.model.options) else {}
    data = stage_data(spec, context)
    built = build_model(f"run:{model_dir}", trust, data.input_shape, _class_names(spec, context))
    log(f"[bold]{spec.name}[/]: finished in an earlier run, loaded from {model_dir}")
    return StageResult(spec.name, built.module, built.card, model_dir=model_dir, role=spec.role, data=data)


def _class_names(spec: StageSpec, context: StageContext) -> list[str]:
    return list(spec.class_names) if spec.class_names is not None else context.data.class_names


def _model(spec: StageSpec, context: StageContext) -> BuiltModel:
    """The stage's model: continued from an earlier stage (its head grown to the stage's classes), or
    built (and checked against the data when it is a saved one). ``seed`` sets the initial weights."""
    if spec.model_from is not None:  # a copy: the earlier stage's result keeps its own weights
        earlier = context.results[spec.model_from]
        built = BuiltModel(copy.deepcopy(earlier.model), copy.deepcopy(earlier.card), trained=False)
        if spec.class_names is not None:
            set_seed(spec.seed)  # the new outputs' initial weights
            grow_classes(built.module, built.card, list(spec.class_names), spec.name)
        return built
    set_seed(spec.seed)
    assert spec.model is not None
    data = stage_data(spec, context)
    check_saved_task(spec.model.source, data.task, f"{spec.name} {spec.model.source}")
    names = _class_names(spec, context)
    built = build_model(spec.model.source, spec.model.options, data.input_shape, names, data.preprocess)
    if spec.heads and not built.card.tasks:  # one head per task over the shared backbone (a saved one has them)
        built.card.tasks = [dict(task) for task in spec.heads]
        with_card_heads(built.module, built.card)
    if built.trained:  # a saved model meets this run's data: same features, preprocessing, no test leak
        check_inputs(built.card, data.preprocess, data.split, f"{spec.name} {spec.model.source}")
        check_task_free(built.card, f"{spec.name} {spec.model.source}")
    return built


def _train(spec: StageSpec, context: StageContext, built: BuiltModel, folder: Path) -> StageResult:
    data, train = stage_data(spec, context), spec.train
    assert train is not None
    if is_main_process():
        check_free_space(context.run_dir, spec.name, built.module, train)
    objective = build_objective(list(spec.objectives))
    train_set = _training_set(spec, context, data, objective.needs_teacher)
    val_set = spec.val_set if spec.val_set is not None else data.val
    _start_folder(context, folder, spec)
    strategy = build_strategy(spec.strategy.name, spec.strategy.options) if spec.strategy is not None else None
    teacher = context.results[spec.teacher].model if spec.teacher is not None else spec.teacher_module
    outcome = fit(
        built.module,
        train_set,
        spec.step if spec.step is not None else objective,
        train,
        val=val_set if spec.save else None,
        teacher=teacher,
        teacher_cache=spec.teacher_cache,
        teacher_outputs=context.teacher_outputs,
        seed=spec.seed,
        stage=spec.name,
        workdir=folder,
        metrics_path=context.run_dir / "metrics.jsonl",
        resume=context.resume,
        strategy=strategy,
        hooks=spec.hooks,
        on_epoch=context.on_epoch if spec.save else [],
        task=spec.task or data.task,
        num_classes=len(_class_names(spec, context)),
    )
    model = outcome.model.cpu()
    if not spec.save:
        return StageResult(spec.name, model, built.card, outcome, role=spec.role, data=data)
    built.card.metrics = {**training_summary(outcome, train, spec.role), **spec.notes}
    built.card.data = dict(data.split)
    model_dir = folder / "model"
    if is_main_process():
        save_model(model, built.card, model_dir)
        if strategy is not None:
            save_trained_part(strategy, model, model_dir)  # head.safetensors or adapter.safetensors
    wait_for_everyone()
    return StageResult(spec.name, model, built.card, outcome, model_dir, role=spec.role, data=data)


def _training_set(spec: StageSpec, context: StageContext, data: DataBundle, needs_teacher: bool) -> Dataset:
    """What the stage trains on: the plan's own set, or the training split of the stage's view followed by
    the transfer set in that view (a distilling stage), with the teacher's view of each example beside it
    where the teacher reads the examples another way."""
    if spec.train_set is not None:
        return spec.train_set
    transfer = context.transfer_set if spec.transfer and needs_teacher else None
    train_set = data.train if transfer is None else concat(data.train, transfer.for_data(data))
    if transfer is not None and spec.save:
        log(f"[bold]{spec.name}[/]: transfer set of {len(transfer)} unlabeled examples added ({len(train_set)} in all)")
    if spec.teacher is not None and needs_teacher:
        train_set = _with_teacher_inputs(train_set, context.results[spec.teacher], data, transfer)
    return train_set


def _with_teacher_inputs(
    train_set: ArrayDataset, teacher: StageResult, data: DataBundle, transfer: TransferSet | None = None
) -> ArrayDataset:
    """The student's training set with the teacher's inputs for each example (the training split, then the
    ``transfer`` set, as the teacher's view reads them), when the teacher reads another view of the
    examples (its own tokenizer, or TF-IDF); as it is when both read the same one."""
    if teacher.data is None or teacher.data is data:
        return train_set
    teacher_train = teacher.data.train
    if transfer is not None:
        teacher_train = concat(teacher_train, transfer.for_data(teacher.data))
    return with_teacher_view(train_set, teacher_train, f"teacher ({teacher.card.architecture})")


def _start_folder(context: StageContext, folder: Path, spec: StageSpec) -> None:
    """A fresh run removes what an earlier run left in the stage's folder, once (the hint stage and its
    stage share the folder of the stage)."""
    top = context.run_dir / spec.workdir.split("/")[0]
    if context.resume or top.name in context.cleared:
        return
    context.cleared.add(top.name)
    if top.exists() and is_main_process():
        shutil.rmtree(top)


def ensemble(spec: StageSpec, context: StageContext) -> StageResult:
    """The teachers as one model whose soft targets are their weighted average at the student's
    distillation temperature (see distill/ensemble.py)."""
    members = [context.results[name] for name in spec.members]
    module = EnsembleTeacher([m.model for m in members], list(spec.weights), spec.temperature)
    first = members[0].card
    options = {"members": list(spec.members), "weights": list(spec.weights), "temperature": spec.temperature}
    card = ModelCard(ENSEMBLE, options, first.input_shape, first.class_names, first.preprocess, data=first.data)
    log(f"teacher: ensemble of {', '.join(spec.members)}, soft targets averaged at T={spec.temperature:g}")
    return StageResult(spec.name, module, card, role=spec.role)


def check_free_space(run_dir: Path, stage: str, model, config: TrainConfig) -> None:
    """Refuse to start a stage whose checkpoints cannot fit on the disk: each one holds the weights and
    up to two optimizer moments, ``keep_checkpoints`` of them are kept, plus the best and the final model."""
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    needed = weight_bytes * (3 * (config.keep_checkpoints + 1) + 2) + 1024**2
    free = shutil.disk_usage(run_dir).free
    if free < needed:
        raise ConfigError(
            f"stage {stage!r} needs about {needed / 1024**2:.0f} MB for checkpoints and the model in {run_dir}, "
            f"and only {free / 1024**2:.0f} MB are free; free some space or set output_dir on another disk"
        )


def training_summary(outcome: FitResult, config: TrainConfig, role: str) -> dict:
    """What the card records of the training: epochs, time, the best epoch and its validation scores."""
    summary = {
        "role": role,
        "epochs": len(outcome.history),
        "train_seconds": outcome.seconds,
        "best_epoch": outcome.best_epoch,
        "stopped_early": outcome.stopped_early,
    }
    if outcome.teacher_mode is not None:
        summary["teacher_mode"] = outcome.teacher_mode
    if outcome.best_epoch is not None and config.restore_best:
        best = outcome.history[outcome.best_epoch - 1]
        summary.update({key: value for key, value in best.items() if key.startswith("val_")})
    return summary
