"""One training stage's state in one object, and how it is set up: the accelerator, the model and its
step, hooks, data, teacher, optimizer, schedule, checkpoints and, on resume, where training stood."""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from torch import nn
from torch.utils.data import DataLoader, Dataset

from protege.checkpoint import Checkpointer, TrainState
from protege.config import TrainConfig
from protege.console import log
from protege.data.dataset import EpochBatchSampler
from protege.data.lengths import pad_id_of, token_lengths
from protege.data.train_augmentation import augmented_train_set
from protege.distill.teacher import TeacherSignal, prepare_teacher
from protege.engine.batches import loader_for, padding_to_cut, sample_inputs, teacher_lookahead
from protege.engine.devices import (
    build_optimizer,
    decay_groups,
    lean_optimizer,
    make_accelerator,
    plain,
    uses_channels_last,
    wants_channels_last,
)
from protege.engine.step import Step
from protege.errors import ProtegeError
from protege.hooks import Hooks
from protege.metrics_file import rewrite_stage
from protege.running import RunningSums
from protege.schedules import build_scheduler
from protege.tasks import TASKS, Task


@dataclass
class FitResult:
    """A trained model and how training went."""

    model: nn.Module
    history: list[dict] = field(default_factory=list)
    best_epoch: int | None = None
    teacher_mode: str | None = None
    seconds: float = 0.0
    stopped_early: bool = False

    @property
    def final(self) -> dict:
        return self.history[-1] if self.history else {}


@dataclass
class TrainingRun:
    """Everything one stage's loop reads and changes. Hooks and steps receive it and may set ``model``,
    ``train`` and ``val`` in their ``setup`` (before loaders and the optimizer are built)."""

    stage: str
    config: TrainConfig
    accelerator: Accelerator
    model: nn.Module
    step: Step
    hooks: Hooks
    train: Dataset | DataLoader
    val: Dataset | DataLoader | None
    seed: int
    task: Task = field(default_factory=lambda: TASKS["classification"])
    monitor: str = "val_accuracy"
    higher_is_better: bool = True
    teacher: nn.Module | None = None
    teacher_cache: str = "auto"
    teacher_outputs: dict | None = None
    """The run's memo of cached teacher outputs, shared by its stages (distill.teacher.prepare_teacher)."""
    num_classes: int | None = None
    """The classes of the targets, where known: a mixed batch's soft targets have one column per class."""
    workdir: Path | None = None
    metrics_path: Path | None = None
    started: float = field(default_factory=time.perf_counter)
    loader: DataLoader | None = None
    sampler: EpochBatchSampler | None = None
    val_loader: DataLoader | None = None
    signal: TeacherSignal | None = None
    optimizer: torch.optim.Optimizer | None = None
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
    checkpointer: Checkpointer | None = None
    channels_last: bool = False
    pad_id: int | None = None
    """The padding id whose all-padding columns training batches lose (engine.batches.padding_to_cut)."""
    state: TrainState = field(default_factory=TrainState)
    sums: RunningSums | None = None
    extra_params: list[nn.Parameter] = field(default_factory=list)
    last_terms: dict[str, torch.Tensor] = field(default_factory=dict)
    last_checkpoint: float = field(default_factory=time.perf_counter)
    """When the last checkpoint was written (or the stage started): epoch-end checkpoints are spaced."""

    @property
    def plain_model(self) -> nn.Module:
        """The model under any distributed or compile wrapper."""
        return plain(self.accelerator, self.model)

    def save_checkpoint(self) -> None:
        """A checkpoint of where training stands (main process writes, every process waits)."""
        assert self.checkpointer is not None and self.optimizer is not None
        self.last_checkpoint = time.perf_counter()
        self.accelerator.wait_for_everyone()
        if self.accelerator.is_main_process:
            self.checkpointer.save(
                self.state,
                self.plain_model,
                self.optimizer,
                self.scheduler,
                self.step.trainable,
                self.hooks.state_dict(),
            )


def open_run(run: TrainingRun, cleanup: contextlib.ExitStack, resume: bool) -> TrainingRun:
    """Set ``run`` up for its first (or resumed) epoch, in the order that keeps results reproducible:
    taps on the user's modules, hooks (which may freeze or transform the model), the data and the teacher,
    trainable parts sized on a sample, the optimizer, Accelerate's wrappers, then the checkpoint."""
    torch.manual_seed(run.seed)
    _augment(run)
    run.step.open(run, cleanup)
    run.hooks.setup(run)
    _open_data(run)
    if run.step.needs_teacher:
        _open_teacher(run, cleanup)
    sample = sample_inputs(run.loader) if run.step.needs_sample or wants_channels_last(run.config) else None
    run.step.setup(run, sample)
    run.channels_last = uses_channels_last(run.config, sample)
    run.pad_id = padding_to_cut(run.model, run.step)
    _build_optimizer(run)
    _prepare(run)
    _restore(run, resume)
    return run


def _augment(run: TrainingRun) -> None:
    """The training set with the train block's augmentations, before any hook sees it (a linear probe must
    not cache features of inputs that change every epoch)."""
    entries, views = run.config.augment, run.config.augment_views
    if not entries and views is None:
        return
    started = time.perf_counter()
    try:
        run.train = augmented_train_set(run.train, entries, run.seed, run.num_classes, run.task.name, views)
    except ProtegeError as exc:
        raise type(exc)(f"stage {run.stage!r}: {exc}") from None
    if run.accelerator.is_main_process:
        names = ", ".join(entry.name for entry in entries)
        drawn = "seeded per example and epoch"
        if views is not None:
            seconds = time.perf_counter() - started
            drawn = f"{views} view(s) per example drawn once in {seconds:.1f} s, view epoch mod {views} in each epoch"
        log(f"[bold]{run.stage}[/]: training batches augmented ({names}), {drawn}")


def _open_data(run: TrainingRun) -> None:
    config = run.config
    if config.patience is not None and run.val is None:
        raise ProtegeError(f"stage {run.stage!r}: early stopping (patience) needs a validation split")
    run.loader = loader_for(run.train, config.batch_size, shuffle=True, seed=run.seed)
    sampler = run.loader.batch_sampler
    run.sampler = sampler if isinstance(sampler, EpochBatchSampler) else None
    if config.group_by_length:
        _group_by_length(run)
    if run.val is not None:
        run.val_loader = loader_for(run.val, max(config.batch_size, 256), shuffle=False, seed=run.seed)


def _group_by_length(run: TrainingRun) -> None:
    """Give the sampler each training text's token count, so its batches group texts of similar length."""
    pad_id = pad_id_of(run.model)
    x = getattr(run.train, "x", None)
    if pad_id is None or run.sampler is None or not isinstance(x, torch.Tensor) or x.is_floating_point():
        raise ProtegeError(
            f"stage {run.stage!r}: train.group_by_length groups texts by their token count, and this model does "
            "not read padded token ids from data in memory; remove group_by_length"
        )
    run.sampler.lengths = token_lengths(x, pad_id)


def _open_teacher(run: TrainingRun, cleanup: contextlib.ExitStack) -> None:
    if run.teacher is None:
        raise ProtegeError(f"stage {run.stage!r}: the objective needs a teacher, and none was given")
    device = run.accelerator.device
    run.signal = prepare_teacher(
        run.teacher,
        run.loader.dataset,
        run.teacher_cache,
        device,
        run.accelerator.autocast,
        run.workdir / "teacher_cache" if run.workdir is not None else None,
        run.step.teacher_layers,
        lookahead=teacher_lookahead(run.config, device, run.loader, run.teacher_cache),
        runtime=run.config.inference_runtime,
        tolerance=run.config.inference_tolerance,
        epochs=run.config.epochs,
        memo=run.teacher_outputs,
    )
    cleanup.callback(run.signal.close)
    if run.accelerator.is_main_process:
        log(f"[bold]{run.stage}[/]: teacher {run.signal.mode}: {run.signal.detail}")


def _build_optimizer(run: TrainingRun) -> None:
    """The hooks' parameter groups (a strategy's), plus the step's trainable parts (a FitNet adapter)."""
    config = run.config
    trainable = run.step.trainable
    groups = run.hooks.param_groups(run)
    if groups is not None:
        extra = decay_groups(trainable.parameters(), config.weight_decay)
        groups += [{**g, "name": name} for g, name in zip(extra, ("objective", "objective.no_decay"), strict=True)]
    run.optimizer = build_optimizer(nn.ModuleList([run.model, trainable]), config, groups, run.accelerator.device)
    run.extra_params = [p for p in trainable.parameters() if p.requires_grad]


def _prepare(run: TrainingRun) -> None:
    """Memory layout, compilation, Accelerate's wrappers and the schedule."""
    if run.channels_last:
        run.model = run.model.to(memory_format=torch.channels_last)
    if run.config.compile:
        run.model = torch.compile(run.model)
    accelerator = run.accelerator
    run.model, run.optimizer, run.loader = accelerator.prepare(run.model, run.optimizer, run.loader)
    run.optimizer = lean_optimizer(accelerator, run.optimizer, run.config)
    if run.val_loader is not None:
        run.val_loader = accelerator.prepare(run.val_loader)
    steps_per_epoch = math.ceil(len(run.loader) / run.config.grad_accumulation)
    run.scheduler = build_scheduler(run.optimizer, run.config, steps_per_epoch)


def _restore(run: TrainingRun, resume: bool) -> None:
    """Checkpoints under ``workdir/checkpoints``; with ``resume``, the last one is loaded (weights, optimizer,
    schedule, random state, position, sums, hook state) and metrics.jsonl is cut back to it."""
    if run.workdir is None:
        return
    run.checkpointer = Checkpointer(run.workdir / "checkpoints", run.config.keep_checkpoints)
    dataset = run.loader.dataset
    fingerprint = dataset.fingerprint() if callable(getattr(dataset, "fingerprint", None)) else None
    run.state = TrainState(fingerprint=fingerprint)
    if not resume:
        return
    restored = run.checkpointer.load_latest(run.plain_model, run.optimizer, run.scheduler, run.step.trainable)
    if restored is not None:
        if restored.fingerprint != fingerprint:
            raise ProtegeError(
                f"stage {run.stage!r}: the checkpoint was taken on other training data; start a new run directory"
            )
        run.state = restored
        run.sums = RunningSums.from_dict(restored.sums, run.sums.metric)
        run.hooks.load_state_dict(restored.hooks)
        if run.accelerator.is_main_process:
            log(f"[bold]{run.stage}[/]: resuming at epoch {run.state.epoch + 1}, batch {run.state.batches_done}")
    if run.metrics_path is not None and run.accelerator.is_main_process:
        rewrite_stage(run.metrics_path, run.stage, run.state.history)


def new_run(
    model: nn.Module,
    train: Dataset | DataLoader,
    step: Step,
    config: TrainConfig,
    hooks: Hooks,
    task: Task,
    **settings,
) -> TrainingRun:
    """A run not yet set up: the accelerator for ``config``, the task's training metric and the value that
    picks the best epoch (the train block's ``monitor``, or the task's own when left at its default)."""
    default = task.name != "classification" and "monitor" not in config.model_fields_set
    monitor, higher = task.monitored(task.monitor if default else config.monitor)
    run = TrainingRun(
        config=config,
        accelerator=make_accelerator(config),
        model=model,
        step=step,
        hooks=hooks,
        train=train,
        task=task,
        monitor=monitor,
        higher_is_better=higher,
        **settings,
    )
    run.sums = RunningSums(task.metric(task.train_metric))
    return run
