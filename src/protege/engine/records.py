"""What an epoch leaves behind: its record (the line of metrics.jsonl), the validation scores, whether it
is the best so far, and the words the progress bar and the log show; plus the errors that stop training."""

from __future__ import annotations

import time

import torch
from accelerate import Accelerator
from torch import nn
from torch.utils.data import DataLoader

from protege.checkpoint import TrainState
from protege.console import log
from protege.data.lengths import cut_padding
from protege.distributed import is_main_process
from protege.engine.batches import as_batch
from protege.errors import ProtegeError
from protege.running import RunningSums
from protege.tasks import TASKS, Task, labeled_mask

CLASSIFICATION = TASKS["classification"]


class TrainingError(ProtegeError):
    """Training cannot go on (the loss became NaN or infinite)."""


def epoch_record(accelerator: Accelerator, stage: str, state: TrainState, sums: RunningSums, scheduler, start) -> dict:
    """The epoch's sums (over every process) as per-example means, the training metric, the step, lr and
    seconds."""
    total = sums.totals(lambda vector: accelerator.reduce(vector, reduction="sum"))
    n = max(total["examples"], 1.0)
    record = {
        "stage": stage,
        "epoch": state.epoch + 1,
        "step": state.global_step,
        "lr": scheduler.get_last_lr()[0],
        "train_loss": total.get("loss", 0.0) / n,
    }
    value = sums.metric_value(total)
    if value is not None:
        record[f"train_{sums.metric.name}"] = value
    for key in sorted(total):
        if key.startswith("term."):
            record[f"train_{key[5:]}"] = total[key] / n
    record["seconds"] = time.perf_counter() - start
    return record


@torch.no_grad()
def validate(
    accelerator: Accelerator,
    model: nn.Module,
    loader: DataLoader,
    task: Task = CLASSIFICATION,
    pad_id: int | None = None,
) -> dict:
    """The task's loss and validation metrics on the validation split, gathered over every process; with
    ``pad_id``, each batch's all-padding columns are cut first (protege.data.lengths)."""
    model.eval()
    metrics = [task.metric(name) for name in task.val_metrics]
    loss_sum = torch.zeros((), device=accelerator.device)
    count = torch.zeros((), device=accelerator.device)
    sums: list[torch.Tensor | None] = [None] * len(metrics)
    for raw in loader:
        batch = as_batch(raw)
        with accelerator.autocast():
            outputs = model(batch["x"] if pad_id is None else cut_padding(batch["x"], pad_id))
        mask = labeled_mask(batch["y"], batch.get("labeled"))
        outputs, target, mask = accelerator.gather_for_metrics((outputs.float(), batch["y"], mask))
        loss_sum += task.loss_sum(outputs[mask], target[mask])
        count += mask.sum()
        for i, metric in enumerate(metrics):
            stats = metric.stats(outputs, target, mask)
            sums[i] = stats if sums[i] is None else sums[i] + stats
    model.train()
    n = max(count.item(), 1.0)
    record = {"val_loss": loss_sum.item() / n}
    for metric, stats in zip(metrics, sums, strict=True):
        record[f"val_{metric.name}"] = metric.from_stats(stats.cpu()) if stats is not None else float("nan")
    return record


def track_best(state: TrainState, record: dict, monitor: str, higher_is_better: bool) -> bool:
    """Whether this epoch is the best so far on the monitored value; counts epochs without improvement."""
    if monitor not in record:
        return False
    value = record[monitor]
    better = state.best_value is None or (value > state.best_value if higher_is_better else value < state.best_value)
    if better:
        state.best_value, state.best_epoch, state.bad_epochs = value, record["epoch"], 0
    else:
        state.bad_epochs += 1
    return better


def skip_step(stage: str, state: TrainState, terms: dict, limit: int) -> None:
    """Drop a batch whose loss is not finite, up to ``limit`` in the whole stage, then stop."""
    state.skipped_steps += 1
    if state.skipped_steps > limit:
        values = ", ".join(f"{k}={v.item():.4g}" for k, v in terms.items())
        raise TrainingError(
            f"stage {stage!r}: {state.skipped_steps} batches had a non-finite loss, more than "
            f"skip_nonfinite_steps={limit} (last at epoch {state.epoch + 1}, batch {state.batches_done + 1}: "
            f"{values}); lower the learning rate or set grad_clip; the last good checkpoint is kept"
        )
    if is_main_process():
        log(
            f"[yellow]{stage}[/]: skipped batch {state.batches_done + 1} of epoch {state.epoch + 1} "
            f"(non-finite loss; {state.skipped_steps}/{limit} allowed)"
        )


def raise_not_finite(stage: str, state: TrainState, terms: dict) -> None:
    values = ", ".join(f"{k}={v.item():.4g}" for k, v in terms.items())
    raise TrainingError(
        f"stage {stage!r}: loss is not finite at epoch {state.epoch + 1}, step {state.global_step} ({values}); "
        f"lower the learning rate or set grad_clip; the last good checkpoint is kept"
    )


def status(record: dict) -> str:
    """The progress bar's words for an epoch: loss, accuracy and validation accuracy."""
    parts = [f"loss {record['train_loss']:.4f}"]
    if "train_accuracy" in record:
        parts.append(f"acc {record['train_accuracy']:.1%}")
    if "val_accuracy" in record:
        parts.append(f"val {record['val_accuracy']:.1%}")
    return " ".join(parts)


def summary(
    stage: str, history: list[dict], seconds: float, best_epoch: int | None, stopped_early: bool, monitor: str
) -> str:
    """The log line at the end of a stage."""
    line = f"[bold]{stage}[/]: {len(history)} epochs in {seconds:.1f}s, {status(history[-1] if history else {})}"
    if best_epoch is not None:
        best = history[best_epoch - 1][monitor]
        shown = f"{best:.1%}" if monitor == "val_accuracy" else f"{monitor.removeprefix('val_')} {best:.4g}"
        line += f"; best val {shown} at epoch {best_epoch}"
    if stopped_early:
        line += " (stopped early)"
    return line
