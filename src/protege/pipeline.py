"""Runs a recipe's stages in order (teacher, student baseline, student, evaluate) into one run directory.

Run directory::

    config.yaml        the resolved recipe
    metrics.jsonl      one line per epoch per stage
    <stage>/model/     model.safetensors + model.json (rebuilds the module; a model source: run:<dir>)
    <stage>/checkpoints/
    report.json        test metrics, cost, agreement, fairness and learning curves (docs/report.md)
    report.html        the same as one self-contained page with plots
    tensorboard/ mlruns/   with ``track: {tensorboard: true, mlflow: true}``
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from accelerate.utils import set_seed
from torch import nn

from protege.config import Recipe, StageConfig, TrainConfig, dump_recipe
from protege.console import log
from protege.data.build import load_data
from protege.data.dataset import DataBundle, concat
from protege.data.transfer import build_transfer_set
from protege.distributed import is_main_process, wait_for_everyone
from protege.engine import FitResult, fit
from protege.errors import ConfigError
from protege.models import ModelCard, build_model, resolve_run_path, save_model
from protege.models.store import atomic_write_text
from protege.objectives import build_objective
from protege.report.html import write_html
from protege.report.summary import build_report, print_summary, read_history, write_report

if TYPE_CHECKING:
    from protege.tracking import Tracker


def stage_titles(stages: dict[str, StageResult]) -> dict[str, str]:
    """How the summary table names each stage's model."""
    student = stages.get("student")
    distilled = student is not None and student.card.metrics.get("teacher_mode") is not None
    return {
        "teacher": "teacher",
        "student_baseline": "student alone",
        "student": "student distilled" if distilled else "student",
    }


@dataclass
class StageResult:
    """A stage's model, its card, and (when it trained here) how training went."""

    name: str
    model: nn.Module
    card: ModelCard
    fit: FitResult | None = None
    model_dir: Path | None = None


@dataclass
class RunResult:
    """What ``protege run`` produced: the run directory, each stage's result and the report."""

    run_dir: Path
    stages: dict[str, StageResult] = field(default_factory=dict)
    report: dict = field(default_factory=dict)


def default_run_dir(recipe: Recipe) -> Path:
    return Path(recipe.output_dir or Path("runs") / recipe.name)


def prepare_run_dir(run_dir: Path, recipe: Recipe, resume: bool, overwrite: bool) -> None:
    """Create (or reopen, with ``resume``) the run directory; refuse to mix two runs in one place."""
    config_path = run_dir / "config.yaml"
    text = dump_recipe(recipe)
    if resume:
        if not config_path.is_file():
            raise ConfigError(f"nothing to resume in {run_dir}: no config.yaml there; run without --resume")
        if config_path.read_text(encoding="utf-8") != text:
            raise ConfigError(
                f"{run_dir} was made by a different recipe; resume with the same recipe or use another output dir"
            )
        return
    if run_dir.exists() and any(run_dir.iterdir()):
        if not overwrite:
            raise ConfigError(f"run directory {run_dir} already exists; pass --resume to continue it or --overwrite")
        if not config_path.is_file():
            raise ConfigError(f"{run_dir} is not a protege run directory (no config.yaml); refusing to delete it")
        shutil.rmtree(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=run_dir):
            pass
    except OSError as exc:
        raise ConfigError(f"cannot write to run directory {run_dir}: {exc.strerror or exc}") from None
    atomic_write_text(config_path, text)


def load_recipe_data(recipe: Recipe) -> DataBundle:
    """The recipe's data, split with the recipe's seed."""
    config = recipe.data
    return load_data(
        config.source,
        config.options,
        val_fraction=config.val_fraction,
        test_fraction=config.test_fraction,
        standardize=config.standardize,
        seed=recipe.seed,
    )


def run_recipe(
    recipe: Recipe, output_dir: str | Path | None = None, resume: bool = False, overwrite: bool = False
) -> RunResult:
    """Run every stage of ``recipe``; with ``resume``, finished stages are loaded and the stage that was
    interrupted continues from its last checkpoint."""
    started = time.perf_counter()
    run_dir = Path(output_dir) if output_dir is not None else default_run_dir(recipe)
    if is_main_process():
        prepare_run_dir(run_dir, recipe, resume, overwrite)
    wait_for_everyone()
    log(f"run directory: {run_dir}")

    data = load_recipe_data(recipe)
    log(f"data: {data.describe()}")
    result = RunResult(run_dir)
    stages = result.stages
    tracker = start_tracking(recipe, run_dir)
    track = {"on_epoch": [tracker.record] if tracker is not None else []}
    if recipe.teacher is not None:
        stages["teacher"] = run_stage("teacher", recipe.teacher, data, recipe, run_dir, resume, **track)
    if recipe.student is not None:
        student = recipe.student
        baseline = student.baseline_stage()
        if baseline is not None:
            stages["student_baseline"] = run_stage("student_baseline", baseline, data, recipe, run_dir, resume, **track)
        teacher = stages["teacher"].model if "teacher" in stages else None
        stages["student"] = run_stage("student", student, data, recipe, run_dir, resume, teacher=teacher, **track)

    history = read_history(run_dir / "metrics.jsonl") if is_main_process() else {}
    titles = stage_titles(stages)
    result.report = build_report(
        recipe, data, stages, recipe.evaluate, time.perf_counter() - started, titles=titles, history=history
    )
    if is_main_process():
        write_report(run_dir / "report.json", result.report)
        if recipe.evaluate.html:
            write_html(run_dir / "report.html", result.report)
    if tracker is not None:
        tracker.report(result.report)
        tracker.close()
    print_summary(result.report, titles)
    log(f"report: {run_dir / ('report.html' if recipe.evaluate.html else 'report.json')}")
    return result


def start_tracking(recipe: Recipe, run_dir: Path) -> Tracker | None:
    """TensorBoard / MLflow loggers (protege.tracking) when the recipe's ``track`` block asks; main process only."""
    if not (recipe.track.tensorboard or recipe.track.mlflow) or not is_main_process():
        return None
    from protege.tracking import Tracker, flat_params

    return Tracker(recipe.track, run_dir, recipe.name, flat_params(recipe.model_dump(mode="json")))


def run_stage(
    name: str,
    stage: StageConfig,
    data: DataBundle,
    recipe: Recipe,
    run_dir: Path,
    resume: bool,
    teacher: nn.Module | None = None,
    on_epoch: list | None = None,
) -> StageResult:
    """Build (or load) the stage's model, train it if the stage says so, and save it under ``name/model``."""
    stage_dir = run_dir / name
    model_dir = stage_dir / "model"
    if resume and (model_dir / "model.json").is_file():
        built = build_model(f"run:{model_dir}", {}, data.input_shape, data.class_names)
        log(f"[bold]{name}[/]: finished in an earlier run, loaded from {model_dir}")
        return StageResult(name, built.module, built.card, model_dir=model_dir)

    set_seed(recipe.seed)
    built = build_model(stage.model.source, stage.model.options, data.input_shape, data.class_names, data.preprocess)
    if stage.train is None:
        log(f"[bold]{name}[/]: loaded {stage.model.source}")
        return StageResult(name, built.module, built.card, model_dir=resolve_run_path(stage.model.source))

    specs = [(o.name, o.options, o.weight) for o in stage.objectives] or [("ce", {}, 1.0)]
    objective = build_objective(specs)
    train_set = data.train
    if objective.needs_teacher and recipe.transfer is not None:
        transfer = recipe.transfer
        extra = build_transfer_set(transfer.source, transfer.options, data.train, recipe.seed, transfer.limit)
        train_set = concat(data.train, extra)
        log(f"[bold]{name}[/]: transfer set of {len(extra)} unlabeled examples added ({len(train_set)} in all)")
    if not resume and stage_dir.exists() and is_main_process():
        shutil.rmtree(stage_dir)
    teacher_cache = getattr(stage, "teacher_cache", "auto")
    outcome = fit(
        built.module,
        train_set,
        objective,
        stage.train,
        val=data.val,
        teacher=teacher,
        teacher_cache=teacher_cache,
        num_classes=data.num_classes,
        seed=recipe.seed,
        stage=name,
        workdir=stage_dir,
        metrics_path=run_dir / "metrics.jsonl",
        resume=resume,
        on_epoch=on_epoch or [],
    )
    model = outcome.model.cpu()
    built.card.metrics = _training_summary(outcome, stage.train)
    if is_main_process():
        save_model(model, built.card, model_dir)
    wait_for_everyone()
    return StageResult(name, model, built.card, outcome, model_dir)


def _training_summary(outcome: FitResult, config: TrainConfig) -> dict:
    summary = {
        "epochs": len(outcome.history),
        "train_seconds": outcome.seconds,
        "best_epoch": outcome.best_epoch,
        "stopped_early": outcome.stopped_early,
    }
    if outcome.teacher_mode is not None:
        summary["teacher_mode"] = outcome.teacher_mode
    if outcome.best_epoch is not None and config.restore_best:
        summary["val_accuracy"] = outcome.history[outcome.best_epoch - 1].get("val_accuracy")
    return summary
