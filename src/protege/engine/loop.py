"""The one training loop: set up, then per epoch: per batch the step, backward, clip, optimizer step,
sums and checkpoints; at the epoch's end its record, validation, the best weights and early stopping."""

from __future__ import annotations

import contextlib
import functools
import math
import operator
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from protege.config import TrainConfig
from protege.console import log, progress_bar
from protege.engine.batches import epoch_batches
from protege.engine.callbacks import EpochCallbacks
from protege.engine.devices import average_gradients, finite_everywhere
from protege.engine.records import epoch_record, raise_not_finite, skip_step, status, summary, track_best, validate
from protege.engine.run import FitResult, TrainingRun, new_run, open_run
from protege.engine.step import Step, SupervisedStep
from protege.errors import ProtegeError
from protege.hooks import Hook, Hooks
from protege.metrics_file import append_record
from protege.objectives import Objective
from protege.running import RunningSums
from protege.tasks import Task, get_task


def fit(
    model: nn.Module,
    train: Dataset | DataLoader,
    objective: Objective | Step,
    config: TrainConfig,
    *,
    val: Dataset | DataLoader | None = None,
    teacher: nn.Module | None = None,
    teacher_cache: str = "auto",
    teacher_outputs: dict | None = None,
    seed: int = 0,
    stage: str = "train",
    workdir: Path | None = None,
    metrics_path: Path | None = None,
    resume: bool = False,
    strategy=None,
    hooks: Sequence[Hook] = (),
    on_epoch: Sequence[Callable[[dict], None]] = (),
    task: str | Task = "classification",
    num_classes: int | None = None,
) -> FitResult:
    """Train ``model`` on ``train`` with ``objective`` (an Objective, run by the supervised step, or a Step),
    distilling from ``teacher`` if it needs one.

    With ``workdir``, checkpoints go to ``workdir/checkpoints`` and ``resume`` continues from the last one
    exactly where it stopped (same batches, same random state, same metrics). A transfer ``strategy`` and
    the ``hooks`` act at the loop's named moments (protege.hooks). Each epoch's record (the line of
    metrics.jsonl) is also handed to every ``on_epoch`` callback, in the main process. ``task`` (protege.tasks)
    says what the outputs mean: it picks the validation loss, the metrics and the monitored value.
    ``config.augment`` augments the training batches (protege.data.augmented); mixup's soft targets have
    ``num_classes`` columns. ``teacher_outputs`` (a dict kept for a whole run) shares the teacher's cached
    outputs between the stages that distil from the same teacher on the same examples.
    """
    step = objective if isinstance(objective, Step) else SupervisedStep(objective)
    if step.needs_teacher and teacher is None:
        raise ProtegeError(f"stage {stage!r}: the objective needs a teacher, and none was given")
    if config.patience is not None and val is None:
        raise ProtegeError(f"stage {stage!r}: early stopping (patience) needs a validation split")
    chain = [*([strategy.as_hook()] if strategy is not None else []), *hooks, EpochCallbacks(on_epoch)]
    task = get_task(task) if isinstance(task, str) else task
    where = {"stage": stage, "workdir": workdir, "metrics_path": metrics_path}
    run = new_run(model, train, step, config, Hooks(chain), task, val=val, teacher=teacher, teacher_cache=teacher_cache,
                  teacher_outputs=teacher_outputs, seed=seed, num_classes=num_classes, **where)  # fmt: skip
    with contextlib.ExitStack() as cleanup:  # taps and teacher hooks come off however training ends
        open_run(run, cleanup, resume)
        bar = cleanup.enter_context(progress_bar())
        total = config.epochs * len(run.loader)
        done = run.state.epoch * len(run.loader) + run.state.batches_done
        task = bar.add_task(stage, total=total, completed=done, status="")
        while run.state.epoch < config.epochs and not run.state.stopped_early:
            bar.update(task, description=f"{stage} {run.state.epoch + 1}/{config.epochs}")
            started = time.perf_counter()
            for batch in epoch_batches(start_epoch(run), run.signal, run.channels_last, run.pad_id):
                logged = train_step(run, batch)
                if logged is not None:
                    bar.update(task, status=logged)
                bar.advance(task)
            bar.update(task, status=status(end_epoch(run, started)))
        return finish(run)


def start_epoch(run: TrainingRun) -> Iterable:
    """Training mode, the hooks' epoch start, and the epoch's batches from where the state stands."""
    run.model.train()
    run.hooks.on_epoch_start(run)  # unfreeze on schedule; model.train() reset BatchNorm
    state = run.state
    if run.sampler is not None:
        run.sampler.start_epoch(state.epoch, state.batches_done * run.accelerator.num_processes)
        return run.loader
    if state.batches_done:
        return run.accelerator.skip_first_batches(run.loader, state.batches_done)
    return run.loader


def train_step(run: TrainingRun, batch: dict[str, torch.Tensor]) -> str | None:
    """One batch: the step's loss terms and the hooks', the step's backward, clip, optimizer step; returns the progress
    bar's status when it logs the loss."""
    accelerator, config, state = run.accelerator, run.config, run.state
    with accelerator.accumulate(run.model):
        with accelerator.autocast():
            result = run.step(run.model, batch, run)
            terms = {**result.terms, **run.hooks.loss_terms(run, batch, result)}
            loss = functools.reduce(operator.add, terms.values())  # no 0 + for one term
        if config.skip_nonfinite_steps and not finite_everywhere(loss, accelerator.num_processes):
            skip_step(run.stage, state, terms, config.skip_nonfinite_steps)
            run.optimizer.zero_grad(set_to_none=True)
            state.batches_done += 1
            return None
        run.step.backward(run, loss, terms)
        if accelerator.sync_gradients and accelerator.num_processes > 1:
            average_gradients(run.extra_params)
        if accelerator.sync_gradients and config.grad_clip is not None:
            accelerator.clip_grad_norm_(run.model.parameters(), config.grad_clip)
        run.optimizer.step()
        run.optimizer.zero_grad(set_to_none=True)
    state.batches_done += 1
    run.sums.add(loss, terms, result.outputs, result.target, result.labeled)
    run.last_terms = terms
    if not accelerator.sync_gradients:
        return None
    run.scheduler.step()
    state.global_step += 1
    run.hooks.after_optimizer_step(run)
    logged = None
    if state.global_step % config.log_every == 0:
        value = loss.item()
        if not math.isfinite(value):
            raise_not_finite(run.stage, state, terms)  # before a checkpoint could keep the bad weights
        logged = f"loss {value:.4f}"
    if run.checkpointer is not None and config.checkpoint_every and state.global_step % config.checkpoint_every == 0:
        state.sums = run.sums.as_dict()
        run.save_checkpoint()
    return logged


def end_epoch(run: TrainingRun, started: float) -> dict:
    """The epoch's record and validation; the best weights kept, early stopping decided, a checkpoint."""
    accelerator, config, state = run.accelerator, run.config, run.state
    record = epoch_record(accelerator, run.stage, state, run.sums, run.scheduler, started)
    if not math.isfinite(record["train_loss"]):
        raise_not_finite(run.stage, state, run.last_terms)
    if run.val_loader is not None:
        record.update(validate(accelerator, run.model, run.val_loader, run.task, run.pad_id))
    state.epoch += 1
    state.batches_done = 0
    run.sums, state.sums = RunningSums(run.sums.metric), {}
    improved = track_best(state, record, run.monitor, run.higher_is_better)
    state.history.append(record)
    if accelerator.is_main_process and run.metrics_path is not None:
        append_record(run.metrics_path, record)
    run.hooks.on_epoch_end(run, record)
    if improved:
        if run.checkpointer is not None:
            if accelerator.is_main_process:
                run.checkpointer.save_best(run.plain_model)
        elif config.restore_best:
            state.best_weights = {k: v.detach().clone() for k, v in run.plain_model.state_dict().items()}
    if config.patience is not None and state.bad_epochs >= config.patience:
        state.stopped_early = True
    if run.checkpointer is not None and checkpoint_due(run):
        run.save_checkpoint()
    return record


def checkpoint_due(run: TrainingRun) -> bool:
    """An epoch-end checkpoint: after the stage's last epoch always, otherwise once ``checkpoint_seconds``
    have passed since the last one (resume replays the epochs in between exactly)."""
    config, state = run.config, run.state
    last_epoch = state.epoch >= config.epochs or state.stopped_early
    return last_epoch or time.perf_counter() - run.last_checkpoint >= config.checkpoint_seconds


def finish(run: TrainingRun) -> FitResult:
    """The best epoch's weights back in (when kept), the hooks' last word on the model, the result."""
    state, trained = run.state, run.plain_model
    if run.config.restore_best and run.val_loader is not None and state.best_epoch is not None:
        if run.checkpointer is not None and run.checkpointer.has_best():
            run.checkpointer.load_best(trained)
        elif state.best_weights is not None:
            trained.load_state_dict(state.best_weights)
    trained = run.hooks.finish(run, trained)
    run.accelerator.wait_for_everyone()
    result = FitResult(
        model=trained,
        history=state.history,
        best_epoch=state.best_epoch,
        teacher_mode=run.signal.mode if run.signal is not None else None,
        seconds=time.perf_counter() - run.started,
        stopped_early=state.stopped_early,
    )
    if run.accelerator.is_main_process:
        log(summary(run.stage, result.history, result.seconds, result.best_epoch, result.stopped_early, run.monitor))
    return result
