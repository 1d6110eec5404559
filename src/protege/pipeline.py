"""Runs a recipe into one run directory: the data, the plan of stages (protege.plan; today's recipes are
the distillation plan), then the report.

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
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from pydantic import ValidationError

from protege import rundir
from protege.config import Recipe, dump_recipe
from protege.console import log
from protege.data.build import SplitExamples, load_data, split_examples
from protege.data.dataset import DataBundle
from protege.data.streamed import refuse_streamed
from protege.data.text import TextEncoder
from protege.data.transfer import TransferSet, build_transfer_set
from protege.data.views import Views
from protege.distributed import is_main_process, wait_for_everyone
from protege.errors import ConfigError
from protege.models.store import atomic_write_text
from protege.plan import DistillationPlan, StageContext, StageResult, run_plan, student_stage_names
from protege.report.html import write_html
from protege.report.summary import build_report, print_summary, read_history, write_report

if TYPE_CHECKING:
    from protege.multitask.plan import MultitaskPlan
    from protege.robust.plan import RobustPlan
    from protege.tracking import Tracker


@dataclass
class RunResult:
    """What ``protege run`` produced: the run directory, each stage's result and the report."""

    run_dir: Path
    stages: dict[str, StageResult] = field(default_factory=dict)
    report: dict = field(default_factory=dict)


def default_run_dir(recipe: Recipe) -> Path:
    return Path(recipe.output_dir or Path("runs") / recipe.name)


IN_MEMORY_BLOCKS = ("continual", "multitask", "unlearning", "adaptation", "robust")
"""Recipe blocks that slice, shift or perturb the training inputs themselves, so need them in memory."""
RUN_FILES = ("config.yaml", "metrics.jsonl", "report.json", "report.html", "tensorboard", "mlruns")
"""Top-level entries every run may write besides its stage folders."""


def run_entries(recipe: Recipe) -> list[str]:
    """What a run of ``recipe`` writes at the top of its directory: the run files and one folder per stage
    (a continual recipe: one per strategy, holding its experiences)."""
    if recipe.continual is not None:
        return [*RUN_FILES, *(strategy.name for strategy in recipe.continual.strategies)]
    if recipe.multitask is not None:
        teachers = [f"teacher_{name}" for name in recipe.multitask.names] if recipe.teacher is not None else []
        return [*RUN_FILES, *teachers, "student"]
    if recipe.unlearning is not None:
        from protege.unlearning.run import AUDIT_FILE

        methods = [method.name for method in recipe.unlearning.methods]
        sisa = ["sisa"] if recipe.unlearning.sisa else []
        return [*RUN_FILES, AUDIT_FILE, "original", "retrained", *methods, *sisa]
    if recipe.adaptation is not None:
        names = [method.name for method in recipe.adaptation.methods]
        return [*RUN_FILES, *dict.fromkeys(["source_only", *names] if "adabn" in names else names)]
    stages = [name for name, _ in recipe.teacher_stages]
    if recipe.student is not None:
        stages += ["student_baseline", *student_stage_names(recipe.student.generations), *(recipe.students or {})]
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
    the marker existed are adopted). The two are compared as recipes, so a config.yaml written before a
    field with a default existed still matches."""
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise ConfigError(f"nothing to resume in {run_dir}: no config.yaml there; run without --resume")
    if not _same_recipe(config_path, recipe):
        raise ConfigError(
            f"{run_dir} was made by a different recipe; resume with the same recipe or use another output dir"
        )


def _same_recipe(config_path: Path, recipe: Recipe) -> bool:
    try:
        text = config_path.read_text(encoding="utf-8")
        if text == dump_recipe(recipe):
            return True
        earlier = Recipe.model_validate(yaml.safe_load(text))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ValidationError):
        return False
    return earlier.model_dump(mode="json") == recipe.model_dump(mode="json")


def load_recipe_data(recipe: Recipe) -> DataBundle:
    """The recipe's data, split with the recipe's seed, as its student (or its only model) reads it."""
    return load_recipe_views(recipe)[0]


def load_recipe_views(recipe: Recipe) -> tuple[DataBundle, Views | None]:
    """The recipe's examples split once with the recipe's seed, and each stage's view of them (its own
    tokenizer, or TF-IDF fitted on the training texts): the last stage's view (the student's) and the views,
    or, for a recipe whose stages must share one view (protege.checks.one_view_needed), that view and None."""
    from protege.checks import one_view_needed
    from protege.models.hf import shared_text_encoder
    from protege.models.view_encoders import shared_model_input, view_encoder

    stages = recipe.stages
    if one_view_needed(recipe) is not None or not stages:
        models = [(n, s.model.source, s.model.options) for n, s in stages]
        encoder = shared_model_input(models) or shared_text_encoder(models)
        data, views = split_recipe_data(recipe, encoder), None
    else:
        views = Views(recipe_examples(recipe), view_encoder)
        encoded = {name: views.for_model(stage.model.source, stage.model.options) for name, stage in stages}
        data = encoded.get("student", encoded[stages[-1][0]])  # the student's view, else the teacher's
    for block in IN_MEMORY_BLOCKS:
        if getattr(recipe, block) is not None:
            refuse_streamed(data.train, f"the {block} block")
    return data, views


def recipe_examples(recipe: Recipe) -> SplitExamples:
    """The recipe's examples split as a run splits them, before any model's encoding (protege.data.views)."""
    config = recipe.data
    return split_examples(
        config.source, config.options, val_fraction=config.val_fraction, test_fraction=config.test_fraction,
        standardize=config.standardize, seed=recipe.seed, task=config.task,
    )  # fmt: skip


def split_recipe_data(recipe: Recipe, text_encoder: TextEncoder | None) -> DataBundle:
    """The recipe's data split as a run splits it, texts through ``text_encoder`` (TF-IDF when None): for a
    finished run, the saved models' own tokenizer, as its config.yaml is a file being loaded, not the user's
    recipe (its ``trust_remote_code`` is not obeyed)."""
    config = recipe.data
    if recipe.multitask is not None:
        from protege.multitask.data import load_multitask_data

        return load_multitask_data(recipe, text_encoder)
    return load_data(
        config.source,
        config.options,
        val_fraction=config.val_fraction,
        test_fraction=config.test_fraction,
        standardize=config.standardize,
        seed=recipe.seed,
        text_encoder=text_encoder,
        task=config.task,
    )


def load_transfer_set(recipe: Recipe, data: DataBundle, views: Views | None = None) -> TransferSet | None:
    """The recipe's transfer set for the labelled ``data``; None without one. Texts are kept raw and encoded
    now for every stage's view (``views``), as each stage will read them, so a run loads it before any stage
    trains and ``--dry-run`` loads it too: a missing file or a bad option costs no training."""
    transfer = recipe.transfer
    if transfer is None:
        return None
    built = build_transfer_set(transfer.source, transfer.options, data, recipe.seed, transfer.limit)
    if views is not None:
        for _, stage in recipe.stages:
            built.for_data(views.for_model(stage.model.source, stage.model.options))
    return built


def check_augmentations(recipe: Recipe, data: DataBundle, views: Views | None) -> None:
    """Each stage's ``train.augment`` against the inputs its model reads (crops need images, token ids take
    none, a crop no larger than the image), and its ``augment_views`` against the examples (in memory, and
    within the views' memory limit), before any stage trains."""
    from protege.data.augment import build_augmentation
    from protege.data.cached_views import check_views
    from protege.data.dataset import first_inputs

    for name, stage in recipe.stages:
        baseline = getattr(stage, "baseline", None)
        blocks = [(f"{name}.train", stage.train), (f"{name}.baseline", baseline)]
        if not any(getattr(train, "augment", None) for _, train in blocks):
            continue
        view = views.for_model(stage.model.source, stage.model.options) if views is not None else data
        sample = first_inputs(view.train, 1)
        for where, train in blocks:
            if getattr(train, "augment", None):
                build_augmentation(train.augment, sample.shape[1:], sample.dtype, data.task, f"{where}.augment")
            if getattr(train, "augment_views", None) is not None:
                check_views(view.train, train.augment_views, f"{where}.augment_views")


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
    """The recipe's plan of stages, then the report, into ``run_dir`` (held by this process)."""
    data, views = load_recipe_views(recipe)
    log(f"data: {data.describe()}")
    if views is not None and len(views) > 1:
        log(f"views: {len(views)} encodings of the same examples, one per kind of model (protege.data.views)")
    transfer_set = load_transfer_set(recipe, data, views)  # before the teacher trains: its problems show now
    check_augmentations(recipe, data, views)
    tracker = start_tracking(recipe, run_dir)
    on_epoch = [tracker.record] if tracker is not None else []
    context = StageContext(data, run_dir, resume, transfer_set, on_epoch, views=views)
    if recipe.continual is not None:
        from protege.continual.run import run_continual

        finals, report = run_continual(recipe, context, time.perf_counter() - started)
        result = RunResult(run_dir, finals, report)
    elif recipe.multitask is not None:
        from protege.multitask.run import run_multitask

        finals, report = run_multitask(recipe, context, time.perf_counter() - started)
        result = RunResult(run_dir, finals, report)
    elif recipe.unlearning is not None:
        from protege.unlearning.run import run_unlearning

        finals, report = run_unlearning(recipe, context, time.perf_counter() - started)
        result = RunResult(run_dir, finals, report)
    elif recipe.adaptation is not None:
        from protege.adaptation.run import run_adaptation

        finals, report = run_adaptation(recipe, context, time.perf_counter() - started)
        result = RunResult(run_dir, finals, report)
    else:
        stages = run_plan(recipe_plan(recipe, data).stages(context.results), context)
        result = RunResult(run_dir, {name: s for name, s in stages.items() if s.role != "hint"})
        history = read_history(run_dir / "metrics.jsonl") if is_main_process() else {}
        result.report = build_report(
            recipe, data, result.stages, recipe.evaluate, time.perf_counter() - started, history=history
        )
        if recipe.robust is not None:
            from protege.robust.evaluate import add_robust_accuracy

            add_robust_accuracy(result.report, {name: s.model for name, s in result.stages.items()}, data, recipe)
            result.report["wall_seconds"] = time.perf_counter() - started
    if is_main_process():
        write_report(run_dir / "report.json", result.report)
        if recipe.evaluate.html:
            write_html(run_dir / "report.html", result.report)
    if tracker is not None:
        tracker.report(result.report)
        tracker.close()
    print_summary(result.report)
    log(f"report: {run_dir / ('report.html' if recipe.evaluate.html else 'report.json')}")
    return result


def recipe_plan(recipe: Recipe, data: DataBundle) -> DistillationPlan | RobustPlan | MultitaskPlan:
    """The plan of a (non-continual) recipe's stages: the distillation plan, each stage trained under attack
    when the recipe has a ``robust:`` block (protege.robust.plan), or the multi-task plan (protege.multitask)."""
    if recipe.multitask is not None:
        from protege.multitask.data import task_specs
        from protege.multitask.plan import MultitaskPlan

        return MultitaskPlan(recipe, data, task_specs(recipe.multitask, data.class_names))
    if recipe.robust is None:
        return DistillationPlan(recipe)
    from protege.robust.plan import RobustPlan

    return RobustPlan(recipe, data)


def start_tracking(recipe: Recipe, run_dir: Path) -> Tracker | None:
    """TensorBoard / MLflow loggers (protege.tracking) when the recipe's ``track`` block asks; main process only."""
    if not (recipe.track.tensorboard or recipe.track.mlflow) or not is_main_process():
        return None
    from protege.tracking import Tracker, flat_params

    return Tracker(recipe.track, run_dir, recipe.name, flat_params(recipe.model_dump(mode="json")))
