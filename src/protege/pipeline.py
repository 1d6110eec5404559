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

import contextlib
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from accelerate.utils import set_seed
from torch import nn

from protege import rundir
from protege.config import Recipe, StageConfig, StudentConfig, TrainConfig, dump_recipe
from protege.console import log
from protege.data.build import load_data
from protege.data.dataset import ArrayDataset, DataBundle, concat
from protege.data.text import TextEncoder
from protege.data.transfer import build_transfer_set
from protege.distill.ensemble import EnsembleTeacher
from protege.distributed import is_main_process, wait_for_everyone
from protege.engine import FitResult, fit
from protege.errors import ConfigError
from protege.models import ModelCard, build_model, resolve_run_path, save_model, trusts_remote_code
from protege.models.compatibility import check_inputs
from protege.models.store import atomic_write_text
from protege.objectives import build_objective
from protege.objectives.hints import FitNet
from protege.report.html import write_html
from protege.report.summary import build_report, print_summary, read_history, write_report
from protege.transfer import build_strategy, save_trained_part

if TYPE_CHECKING:
    from protege.tracking import Tracker


def stage_titles(stages: dict[str, StageResult]) -> dict[str, str]:
    """How the summary table names each stage's model."""
    student = stages.get("student")
    distilled = student is not None and student.card.metrics.get("teacher_mode") is not None
    titles = {name: name.replace("_", " ") for name in stages}
    ensemble = "teacher" in stages and stages["teacher"].card.architecture == ENSEMBLE
    titles.update(
        {
            "teacher": "teacher ensemble" if ensemble else "teacher",
            "student_baseline": "student alone",
            "student": "student distilled" if distilled else "student",
        }
    )
    if "student_gen1" in stages:
        titles["student"] = f"student gen {sum(name.startswith('student_gen') for name in stages) + 1}"
        titles.update({name: name.replace("student_gen", "student gen ") for name in stages if "_gen" in name})
    return titles


ENSEMBLE = "ensemble"
"""The architecture name the report gives several teachers averaged into one."""


def student_stage_names(generations: int) -> list[str]:
    """Born-again generations ``student_gen1``..., the last one named ``student`` (the run's final model)."""
    return [f"student_gen{g}" for g in range(1, generations)] + ["student"]


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


RUN_FILES = ("config.yaml", "metrics.jsonl", "report.json", "report.html", "tensorboard", "mlruns")
"""Top-level entries every run may write besides its stage folders."""


def run_entries(recipe: Recipe) -> list[str]:
    """What a run of ``recipe`` writes at the top of its directory: the run files and one folder per stage."""
    stages = [name for name, _ in recipe.teacher_stages]
    if recipe.student is not None:
        stages += ["student_baseline", *student_stage_names(recipe.student.generations)]
    return [*RUN_FILES, *stages]


@contextlib.contextmanager
def run_directory(run_dir: Path, recipe: Recipe, resume: bool, overwrite: bool) -> Iterator[None]:
    """Create, reopen (``resume``) or replace (``overwrite``) the run directory and hold its lock while
    the run goes on. Only a folder protege made is ever reopened or replaced, and replacing it removes
    only what protege wrote there (protege.rundir)."""
    if not is_main_process():
        yield
        return
    if resume and overwrite:
        raise ConfigError("--resume continues a run and --overwrite replaces it; pass one of them")
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"run directory {run_dir} is a file; choose a folder with --output")
    existing = run_dir.is_dir() and rundir.holds_results(run_dir)
    if existing and not resume and not overwrite:
        raise ConfigError(f"run directory {run_dir} already exists; pass --resume to continue it or --overwrite")
    if existing and overwrite and not rundir.is_run_directory(run_dir):
        raise ConfigError(
            f"{run_dir} is not a protege run directory (no {rundir.MARKER} marker); protege only replaces "
            "folders it made: choose another --output or empty it yourself"
        )
    if resume:
        _check_resumable(run_dir, recipe)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=run_dir, prefix=".write-check.", suffix=".tmp"):
            pass
    except OSError as exc:
        raise ConfigError(f"cannot write to run directory {run_dir}: {exc.strerror or exc}") from None
    with rundir.locked(run_dir):
        if resume:
            left = rundir.remove_temporary(run_dir)
            if left:
                log(f"removed {len(left)} temporary file(s) an interrupted run left in {run_dir}")
        elif existing:
            removed = rundir.clear(run_dir)
            log(f"--overwrite: removed {', '.join(removed) or 'nothing'} from {run_dir}")
        rundir.claim(run_dir, run_entries(recipe))
        if not resume:
            atomic_write_text(run_dir / "config.yaml", dump_recipe(recipe))
        yield


def _check_resumable(run_dir: Path, recipe: Recipe) -> None:
    """A run can be resumed where its config.yaml is this very recipe (marker or not: runs made before
    the marker existed are adopted)."""
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise ConfigError(f"nothing to resume in {run_dir}: no config.yaml there; run without --resume")
    try:
        same = config_path.read_text(encoding="utf-8") == dump_recipe(recipe)
    except (OSError, UnicodeDecodeError):
        same = False
    if not same:
        raise ConfigError(
            f"{run_dir} was made by a different recipe; resume with the same recipe or use another output dir"
        )


def load_recipe_data(recipe: Recipe) -> DataBundle:
    """The recipe's data, split with the recipe's seed; texts are tokenised for Hugging Face models."""
    from protege.models.hf import shared_text_encoder

    stages = [*recipe.teacher_stages, *([("student", recipe.student)] if recipe.student else [])]
    return split_recipe_data(recipe, shared_text_encoder([(n, s.model.source, s.model.options) for n, s in stages]))


def split_recipe_data(recipe: Recipe, text_encoder: TextEncoder | None) -> DataBundle:
    """The recipe's data split as a run splits it, texts through ``text_encoder`` (TF-IDF when None): for a
    finished run, the saved models' own tokenizer, as its config.yaml is a file being loaded, not the user's
    recipe (its ``trust_remote_code`` is not obeyed)."""
    config = recipe.data
    return load_data(
        config.source,
        config.options,
        val_fraction=config.val_fraction,
        test_fraction=config.test_fraction,
        standardize=config.standardize,
        seed=recipe.seed,
        text_encoder=text_encoder,
    )


def load_transfer_set(recipe: Recipe, data: DataBundle) -> ArrayDataset | None:
    """The recipe's transfer set, encoded like the labelled data; None without one. A run loads it before
    any stage trains and ``--dry-run`` loads it too, so a missing file or a bad option costs no training."""
    transfer = recipe.transfer
    if transfer is None:
        return None
    return build_transfer_set(
        transfer.source,
        transfer.options,
        data.train,
        recipe.seed,
        transfer.limit,
        text_encoder=data.text_encoder,
        preprocess=data.preprocess,
    )


def run_recipe(
    recipe: Recipe, output_dir: str | Path | None = None, resume: bool = False, overwrite: bool = False
) -> RunResult:
    """Run every stage of ``recipe``; with ``resume``, finished stages are loaded and the stage that was
    interrupted continues from its last checkpoint."""
    started = time.perf_counter()
    run_dir = Path(output_dir) if output_dir is not None else default_run_dir(recipe)
    with run_directory(run_dir, recipe, resume, overwrite):
        wait_for_everyone()
        log(f"run directory: {run_dir}")
        return _run_stages(recipe, run_dir, resume, started)


def _run_stages(recipe: Recipe, run_dir: Path, resume: bool, started: float) -> RunResult:
    """The recipe's stages in order, then the report, into ``run_dir`` (held by this process)."""
    data = load_recipe_data(recipe)
    log(f"data: {data.describe()}")
    transfer_set = load_transfer_set(recipe, data)  # before the teacher trains, so its problems show now
    result = RunResult(run_dir)
    stages = result.stages
    tracker = start_tracking(recipe, run_dir)
    track = {"on_epoch": [tracker.record] if tracker is not None else []}
    for name, stage in recipe.teacher_stages:
        stages[name] = run_stage(name, stage, data, recipe, run_dir, resume, **track)
    if recipe.student is not None:
        student = recipe.student
        baseline = student.baseline_stage()
        if baseline is not None:
            stages["student_baseline"] = run_stage("student_baseline", baseline, data, recipe, run_dir, resume, **track)
        teacher = None
        if len(recipe.teacher_stages) > 1:
            stages["teacher"] = ensemble_stage([stages[name] for name, _ in recipe.teacher_stages], student)
        if "teacher" in stages:
            teacher = stages["teacher"].model
        extra = {**track, "transfer_set": transfer_set}
        for generation, name in enumerate(student_stage_names(student.generations)):
            seed = recipe.seed + generation  # born-again generations start from different weights
            stages[name] = run_stage(name, student, data, recipe, run_dir, resume, teacher=teacher, seed=seed, **extra)
            teacher = stages[name].model

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
    seed: int | None = None,
    on_epoch: list | None = None,
    transfer_set: ArrayDataset | None = None,
) -> StageResult:
    """Build (or load) the stage's model, train it if the stage says so, and save it under ``name/model``.
    ``seed`` (default: the recipe's) sets the initial weights and the data order; a distilling stage adds
    ``transfer_set`` (unlabeled inputs) to its training set."""
    seed = recipe.seed if seed is None else seed
    stage_dir = run_dir / name
    model_dir = stage_dir / "model"
    if resume and (model_dir / "model.json").is_file():
        # the recipe being resumed is the user's: its permission for the model's code carries over
        trust = {"trust_remote_code": True} if trusts_remote_code(stage.model.options) else {}
        built = build_model(f"run:{model_dir}", trust, data.input_shape, data.class_names)
        log(f"[bold]{name}[/]: finished in an earlier run, loaded from {model_dir}")
        return StageResult(name, built.module, built.card, model_dir=model_dir)

    set_seed(seed)
    built = build_model(stage.model.source, stage.model.options, data.input_shape, data.class_names, data.preprocess)
    if built.trained:  # a saved model meets this run's data: same features, preprocessing, no test leak
        check_inputs(built.card, data.preprocess, data.split, f"{name} {stage.model.source}")
    if stage.train is None:
        log(f"[bold]{name}[/]: loaded {stage.model.source}")
        return StageResult(name, built.module, built.card, model_dir=resolve_run_path(stage.model.source))

    if is_main_process():
        check_free_space(run_dir, name, built.module, stage.train)
    objective = build_objective(_objective_specs(stage))
    train_set = data.train
    if objective.needs_teacher and transfer_set is not None:
        train_set = concat(data.train, transfer_set)
        log(f"[bold]{name}[/]: transfer set of {len(transfer_set)} unlabeled examples added ({len(train_set)} in all)")
    if not resume and stage_dir.exists() and is_main_process():
        shutil.rmtree(stage_dir)
    teacher_cache = getattr(stage, "teacher_cache", "auto")
    strategy = build_strategy(stage.strategy.name, stage.strategy.options) if stage.strategy is not None else None
    for hint in objective.parts:
        if isinstance(hint, FitNet) and hint.hint_epochs:
            # FitNets stage 1: only the hint loss, so the layers up to the guided one (and the
            # regressor) learn to predict the teacher's hint before the whole student trains
            hint_only = build_objective([("fitnet", {**hint.options(), "ce_weight": 0.0}, 1.0)])
            hint_config = stage.train.model_copy(update={"epochs": hint.hint_epochs, "patience": None})
            fit(
                built.module,
                train_set,
                hint_only,
                hint_config,
                teacher=teacher,
                teacher_cache=teacher_cache,
                seed=seed,
                stage=f"{name}_hint",
                workdir=stage_dir / "hint",
                metrics_path=run_dir / "metrics.jsonl",
                resume=resume,
            )
    outcome = fit(
        built.module,
        train_set,
        objective,
        stage.train,
        val=data.val,
        teacher=teacher,
        teacher_cache=teacher_cache,
        seed=seed,
        stage=name,
        workdir=stage_dir,
        metrics_path=run_dir / "metrics.jsonl",
        resume=resume,
        strategy=strategy,
        on_epoch=on_epoch or [],
    )
    model = outcome.model.cpu()
    built.card.metrics = _training_summary(outcome, stage.train)
    built.card.data = dict(data.split)
    if is_main_process():
        save_model(model, built.card, model_dir)
        if strategy is not None:
            save_trained_part(strategy, model, model_dir)  # head.safetensors or adapter.safetensors
    wait_for_everyone()
    return StageResult(name, model, built.card, outcome, model_dir)


def check_free_space(run_dir: Path, stage: str, model: nn.Module, config: TrainConfig) -> None:
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


def ensemble_stage(teachers: list[StageResult], student: StudentConfig) -> StageResult:
    """The teachers as one model whose soft targets are their weighted average at the student's
    distillation temperature (see distill/ensemble.py)."""
    temperature = next(
        (p.temperature for p in build_objective(_objective_specs(student)).parts if hasattr(p, "temperature")), 1.0
    )
    weights = student.teacher_weights or [1.0] * len(teachers)
    module = EnsembleTeacher([t.model for t in teachers], weights, temperature)
    first = teachers[0].card
    options = {"members": [t.name for t in teachers], "weights": weights, "temperature": temperature}
    card = ModelCard(ENSEMBLE, options, first.input_shape, first.class_names, first.preprocess, data=first.data)
    log(f"teacher: ensemble of {', '.join(t.name for t in teachers)}, soft targets averaged at T={temperature:g}")
    return StageResult("teacher", module, card)


def _objective_specs(stage: StageConfig) -> list[tuple[str, dict, float]]:
    return [(o.name, o.options, o.weight) for o in stage.objectives] or [("ce", {}, 1.0)]


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
