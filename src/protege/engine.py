"""The one training loop: batch, forward, objective, backward, clip, step, log, checkpoint.

Hugging Face Accelerate carries device placement, mixed precision, gradient accumulation and
multi-process training; this module adds nothing of its own for distribution.
"""

from __future__ import annotations

import contextlib
import functools
import math
import operator
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, DistributedType
from torch import nn
from torch.utils.data import DataLoader, Dataset

from protege.checkpoint import Checkpointer, TrainState
from protege.config import TrainConfig
from protege.console import log, progress_bar
from protege.data.dataset import ArrayDataset, EpochBatchSampler, batch_loader
from protege.distill.teacher import TeacherBatch, TeacherSignal, online_lookahead, prepare_teacher
from protege.distributed import is_main_process, use_cpu
from protege.errors import ProtegeError
from protege.metrics_file import append_record, rewrite_stage
from protege.models.taps import FeatureTaps
from protege.objectives import Objective, StepOutputs
from protege.running import RunningSums
from protege.schedules import build_scheduler
from protege.transfer.base import Strategy


class TrainingError(ProtegeError):
    """Training cannot go on (the loss became NaN or infinite)."""


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


def resolve_mixed_precision(setting: str) -> str:
    """``auto`` is bf16 on a GPU that supports it, full precision elsewhere."""
    if setting != "auto":
        return setting
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16"
    return "no"


def make_accelerator(config: TrainConfig) -> Accelerator:
    """Device, precision and accumulation from the train block; batches move to a GPU asynchronously."""
    return Accelerator(
        cpu=use_cpu(),
        mixed_precision=resolve_mixed_precision(config.mixed_precision),
        gradient_accumulation_steps=config.grad_accumulation,
        dataloader_config=DataLoaderConfiguration(non_blocking=torch.cuda.is_available()),
    )


def uses_channels_last(config: TrainConfig, sample: torch.Tensor | None) -> bool:
    """``auto`` is channels-last memory for image batches on a GPU, where convolutions run faster with it."""
    if sample is None or sample.dim() != 4:
        return False
    return config.channels_last is True or (config.channels_last == "auto" and torch.cuda.is_available())


def as_batch(batch: object) -> dict[str, torch.Tensor]:
    """Accept dict batches (protege's) and (inputs, targets) tuples (most user DataLoaders)."""
    if isinstance(batch, dict):
        return batch
    if isinstance(batch, (list, tuple)) and len(batch) >= 2:
        return {"x": batch[0], "y": batch[1]}
    raise ProtegeError("a batch must be a dict with 'x' and 'y' or an (inputs, targets) pair")


def decay_groups(params: Iterable[nn.Parameter], weight_decay: float) -> list[dict]:
    """Trainable parameters split as timm does: biases and normalisation weights (1-D) get no weight decay."""
    decay, no_decay = [], []
    for param in params:
        if param.requires_grad:
            (no_decay if param.ndim <= 1 else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(
    model: nn.Module, config: TrainConfig, groups: list[dict] | None = None, device: torch.device | None = None
) -> torch.optim.Optimizer:
    """AdamW or SGD over ``groups`` (a strategy's, each with its own lr) or the model's decay/no-decay groups.

    On a CPU or CUDA ``device`` the fused implementation updates all parameters in one kernel: on a CPU it
    takes a third of the time of the per-parameter loop PyTorch picks there by default.
    """
    if groups is None:
        groups = decay_groups(model.parameters(), config.weight_decay)
    groups = [g for g in groups if g["params"]]
    if not any(p.requires_grad for g in groups for p in g["params"]):
        raise ProtegeError("the model has no trainable parameters")
    fused = {"fused": True} if _fusable(groups, device) else {}
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, **fused)
    return torch.optim.AdamW(groups, lr=config.lr, **fused)


def _fusable(groups: list[dict], device: torch.device | None) -> bool:
    """Fused kernels take dense floating-point parameters on a CPU or a CUDA device."""
    if device is None or device.type not in ("cpu", "cuda"):
        return False
    return all(p.dtype in FUSED_DTYPES and p.layout == torch.strided for g in groups for p in g["params"])


FUSED_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def _loader(data: Dataset | DataLoader, batch_size: int, shuffle: bool, seed: int) -> DataLoader:
    if isinstance(data, DataLoader):
        return data
    return batch_loader(data, batch_size, shuffle=shuffle, seed=seed)


def fit(
    model: nn.Module,
    train: Dataset | DataLoader,
    objective: Objective,
    config: TrainConfig,
    *,
    val: Dataset | DataLoader | None = None,
    teacher: nn.Module | None = None,
    teacher_cache: str = "auto",
    seed: int = 0,
    stage: str = "train",
    workdir: Path | None = None,
    metrics_path: Path | None = None,
    resume: bool = False,
    strategy: Strategy | None = None,
    on_epoch: Sequence[Callable[[dict], None]] = (),
) -> FitResult:
    """Train ``model`` on ``train`` with ``objective`` (distilling from ``teacher`` if it needs one).

    With ``workdir``, checkpoints go to ``workdir/checkpoints`` and ``resume`` continues from the
    last one exactly where it stopped (same batches, same random state, same metrics). A transfer
    ``strategy`` decides which parameter groups train, at which learning rate, in which epoch. Each epoch's
    record (the line of metrics.jsonl) is also handed to every ``on_epoch`` callback, in the main process.
    """
    if objective.needs_teacher and teacher is None:
        raise ProtegeError(f"stage {stage!r}: the objective needs a teacher, and none was given")
    if config.patience is not None and val is None:
        raise ProtegeError(f"stage {stage!r}: early stopping (patience) needs a validation split")
    if strategy is not None and getattr(strategy, "cache_features", False):
        from protege.transfer.feature_cache import fit_on_cached_features

        cached = fit_on_cached_features(
            model, train, objective, config, strategy, val=val, seed=seed, stage=stage,
            workdir=workdir, metrics_path=metrics_path, resume=resume,
        )  # fmt: skip
        if cached is not None:
            return cached
    started = time.perf_counter()
    torch.manual_seed(seed)
    accelerator = make_accelerator(config)
    loader = _loader(train, config.batch_size, shuffle=True, seed=seed)
    sampler = loader.batch_sampler if isinstance(loader.batch_sampler, EpochBatchSampler) else None
    val_loader = _loader(val, max(config.batch_size, 256), shuffle=False, seed=seed) if val is not None else None

    with contextlib.ExitStack() as cleanup:  # forward hooks come off however training ends
        # taps on the module itself (not a distributed wrapper) so the paths are the user's paths
        student_taps = None
        if objective.student_layers:
            student_taps = cleanup.enter_context(FeatureTaps(model, objective.student_layers))
        signal: TeacherSignal | None = None
        if objective.needs_teacher:
            cache_dir = workdir / "teacher_cache" if workdir is not None else None
            signal = prepare_teacher(
                teacher,
                loader.dataset,
                teacher_cache,
                accelerator.device,
                accelerator.autocast,
                cache_dir,
                objective.teacher_layers,
                lookahead=_teacher_lookahead(config, accelerator.device, loader, teacher_cache),
            )
            cleanup.callback(signal.close)
            if accelerator.is_main_process:
                log(f"[bold]{stage}[/]: teacher {signal.mode} ({signal.detail})")

        if strategy is not None:
            model = strategy.prepare(model)
            strategy.check_processes(accelerator.num_processes, config.epochs)
            strategy.start_epoch(0)  # frozen before the optimizer and any distributed wrapper see the model
        wants_layout = config.channels_last is True or (config.channels_last == "auto" and torch.cuda.is_available())
        sample = _sample_inputs(loader) if objective.needs_setup or wants_layout else None
        if objective.needs_setup:
            objective.setup(model, teacher, sample, len(loader.dataset))
        objective = objective.to(accelerator.device)
        groups = None
        if strategy is not None:
            groups = strategy.param_groups(config.lr, config.weight_decay)
            extra = decay_groups(objective.parameters(), config.weight_decay)  # a FitNet adapter trains too
            groups += [{**g, "name": name} for g, name in zip(extra, ("objective", "objective.no_decay"), strict=True)]
        optimizer = build_optimizer(nn.ModuleList([model, objective]), config, groups, accelerator.device)
        objective_params = [p for p in objective.parameters() if p.requires_grad]
        channels_last = uses_channels_last(config, sample)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        if config.compile:
            model = torch.compile(model)
        model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
        optimizer = _lean_optimizer(accelerator, optimizer, config)
        if val_loader is not None:
            val_loader = accelerator.prepare(val_loader)
        steps_per_epoch = math.ceil(len(loader) / config.grad_accumulation)
        scheduler = build_scheduler(optimizer, config, steps_per_epoch)

        checkpointer = Checkpointer(workdir / "checkpoints", config.keep_checkpoints) if workdir is not None else None
        has_fingerprint = checkpointer is not None and isinstance(loader.dataset, ArrayDataset)
        fingerprint = loader.dataset.fingerprint() if has_fingerprint else None
        state = TrainState(fingerprint=fingerprint)
        if resume and checkpointer is not None:
            restored = checkpointer.load_latest(_plain(accelerator, model), optimizer, scheduler, objective)
            if restored is not None:
                if restored.fingerprint != fingerprint:
                    raise ProtegeError(
                        f"stage {stage!r}: the checkpoint was taken on other training data; start a new run directory"
                    )
                state = restored
                if accelerator.is_main_process:
                    log(f"[bold]{stage}[/]: resuming at epoch {state.epoch + 1}, batch {state.batches_done}")
            if metrics_path is not None and accelerator.is_main_process:
                rewrite_stage(metrics_path, stage, state.history)

        sums = RunningSums.from_dict(state.sums)
        bar = progress_bar()
        total_batches = config.epochs * len(loader)
        with bar:
            task = bar.add_task(
                stage, total=total_batches, completed=state.epoch * len(loader) + state.batches_done, status=""
            )
            while state.epoch < config.epochs and not state.stopped_early:
                epoch_start = time.perf_counter()
                model.train()
                if strategy is not None:
                    strategy.start_epoch(state.epoch)  # unfreeze on schedule; model.train() reset BatchNorm
                if sampler is not None:
                    sampler.start_epoch(state.epoch, state.batches_done * accelerator.num_processes)
                    batches: Iterable = loader
                else:
                    batches = (
                        accelerator.skip_first_batches(loader, state.batches_done) if state.batches_done else loader
                    )
                bar.update(task, description=f"{stage} {state.epoch + 1}/{config.epochs}")
                for batch, teacher_logits, teacher_features in _with_teacher(batches, signal, channels_last):
                    with accelerator.accumulate(model):
                        with accelerator.autocast():
                            logits = model(batch["x"])
                            outputs = StepOutputs(
                                logits,
                                batch["y"],
                                teacher_logits,
                                teacher_features=teacher_features,
                                index=batch.get("index"),
                            )
                            if student_taps is not None:
                                outputs.features = dict(student_taps.outputs)
                            terms = objective(outputs)
                            if strategy is not None:
                                terms = {**terms, **strategy.loss_terms()}
                            loss = functools.reduce(operator.add, terms.values())  # no 0 + for one term
                        if config.skip_nonfinite_steps and not _finite_everywhere(loss, accelerator.num_processes):
                            _skip_step(stage, state, terms, config.skip_nonfinite_steps)
                            optimizer.zero_grad(set_to_none=True)
                            state.batches_done += 1
                            bar.advance(task)
                            continue
                        accelerator.backward(loss)
                        if accelerator.sync_gradients and accelerator.num_processes > 1:
                            _average_objective_gradients(objective_params)
                        if accelerator.sync_gradients and config.grad_clip is not None:
                            accelerator.clip_grad_norm_(model.parameters(), config.grad_clip)
                        optimizer.step()
                        optimizer.zero_grad(set_to_none=True)
                    state.batches_done += 1
                    sums.add(loss, terms, logits, batch["y"])
                    if accelerator.sync_gradients:
                        scheduler.step()
                        state.global_step += 1
                        if state.global_step % config.log_every == 0:
                            value = loss.item()
                            if not math.isfinite(value):
                                _raise_not_finite(stage, state, terms)
                            bar.update(task, status=f"loss {value:.4f}")
                        if (
                            checkpointer is not None
                            and config.checkpoint_every
                            and (state.global_step % config.checkpoint_every == 0)
                        ):
                            state.sums = sums.as_dict()
                            _save(accelerator, checkpointer, state, model, optimizer, scheduler, objective)
                    bar.advance(task)

                record = _epoch_record(accelerator, stage, state, sums, scheduler, epoch_start)
                if not math.isfinite(record["train_loss"]):
                    _raise_not_finite(stage, state, terms)
                if val_loader is not None:
                    record.update(_validate(accelerator, model, val_loader))
                state.epoch += 1
                state.batches_done = 0
                sums = RunningSums()
                state.sums = {}
                improved = _track_best(state, record, config)
                state.history.append(record)
                bar.update(task, status=_status(record))
                if accelerator.is_main_process:
                    if metrics_path is not None:
                        append_record(metrics_path, record)
                    for callback in on_epoch:
                        callback(record)
                    if improved and checkpointer is not None:
                        checkpointer.save_best(_plain(accelerator, model))
                if improved and checkpointer is None and config.restore_best:
                    state.best_weights = {
                        k: v.detach().clone() for k, v in _plain(accelerator, model).state_dict().items()
                    }
                if config.patience is not None and state.bad_epochs >= config.patience:
                    state.stopped_early = True
                if checkpointer is not None:
                    _save(accelerator, checkpointer, state, model, optimizer, scheduler, objective)

        trained = _plain(accelerator, model)
        if config.restore_best and val_loader is not None and state.best_epoch is not None:
            if checkpointer is not None and checkpointer.has_best():
                checkpointer.load_best(trained)
            elif state.best_weights is not None:
                trained.load_state_dict(state.best_weights)
        if strategy is not None:
            trained = strategy.finalize(trained)
        accelerator.wait_for_everyone()
        result = FitResult(
            model=trained,
            history=state.history,
            best_epoch=state.best_epoch,
            teacher_mode=signal.mode if signal is not None else None,
            seconds=time.perf_counter() - started,
            stopped_early=state.stopped_early,
        )
        if accelerator.is_main_process:
            log(_summary(stage, result))
        return result


def _average_objective_gradients(params: list[nn.Parameter]) -> None:
    """Trainable parts of the loss (adapters, auxiliary heads) sit outside the DDP-wrapped model, so
    their gradients are averaged here, as DDP does for the model's: every process keeps the same copy."""
    if not params:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    torch.distributed.all_reduce(flat)
    flat /= torch.distributed.get_world_size()
    offset = 0
    for param, grad in zip(params, grads, strict=True):
        param.grad = flat[offset : offset + grad.numel()].view_as(param).clone()
        offset += grad.numel()


def _plain(accelerator: Accelerator, model: nn.Module) -> nn.Module:
    """The user's module under any distributed or torch.compile wrapper (its state dict has the plain names)."""
    return accelerator.unwrap_model(model, keep_torch_compile=False)


def _sample_inputs(loader: DataLoader) -> torch.Tensor:
    """A couple of inputs for objectives that size themselves on a dry run (adapters)."""
    if isinstance(loader.dataset, ArrayDataset):
        return loader.dataset.x[:2]
    return as_batch(next(iter(loader)))["x"][:2]


def _lean_optimizer(accelerator: Accelerator, optimizer: torch.optim.Optimizer, config: TrainConfig):
    """The optimizer under Accelerate's wrapper when the wrapper has nothing to do: one gradient step per
    batch, no fp16 loss scaler, plain or DDP processes. Its ``step`` asks importlib whether LOMO is installed
    twice per call (a file-system search, 0.1–0.4 ms a step, 5–15% of a small model's step on a CPU)."""
    inner = getattr(optimizer, "optimizer", None)
    idle = (
        inner is not None
        and config.grad_accumulation == 1
        and getattr(optimizer, "scaler", None) is None
        and accelerator.distributed_type in (DistributedType.NO, DistributedType.MULTI_CPU, DistributedType.MULTI_GPU)
    )
    return inner if idle else optimizer


def _teacher_lookahead(config: TrainConfig, device: torch.device, loader: DataLoader, cache: str) -> int:
    """Training batches per online teacher forward (1 under gradient accumulation: Accelerate finds the
    last batch of an epoch by reading one ahead, and a longer look-ahead would move that point)."""
    if config.grad_accumulation > 1 or (cache != "off" and isinstance(loader.dataset, ArrayDataset)):
        return 1  # an in-memory dataset is cached, unless the cache is switched off
    example = _sample_inputs(loader)[0]
    return online_lookahead(
        device, config.batch_size, example.nelement() * example.element_size(), config.teacher_batch_size
    )


def _with_teacher(batches: Iterable, signal: TeacherSignal | None, channels_last: bool) -> Iterable[TeacherBatch]:
    """The epoch's batches as dicts (in the layout the model wants), each with the teacher's outputs for it."""
    prepared = (_prepare_batch(raw, channels_last) for raw in batches)
    if signal is None:
        return ((batch, None, {}) for batch in prepared)
    return signal.stream(prepared)


def _prepare_batch(raw: object, channels_last: bool) -> dict[str, torch.Tensor]:
    batch = as_batch(raw)
    if channels_last:
        batch["x"] = batch["x"].contiguous(memory_format=torch.channels_last)
    return batch


def _epoch_record(accelerator: Accelerator, stage: str, state: TrainState, sums: RunningSums, scheduler, start) -> dict:
    total = sums.totals(lambda vector: accelerator.reduce(vector, reduction="sum"))
    keys = sorted(total)
    n = max(total["examples"], 1.0)
    record = {
        "stage": stage,
        "epoch": state.epoch + 1,
        "step": state.global_step,
        "lr": scheduler.get_last_lr()[0],
        "train_loss": total.get("loss", 0.0) / n,
    }
    if total.get("labeled", 0.0) > 0:
        record["train_accuracy"] = total["correct"] / total["labeled"]
    for key in keys:
        if key.startswith("term."):
            record[f"train_{key[5:]}"] = total[key] / n
    record["seconds"] = time.perf_counter() - start
    return record


@torch.no_grad()
def _validate(accelerator: Accelerator, model: nn.Module, loader: DataLoader) -> dict:
    model.eval()
    loss_sum = torch.zeros((), device=accelerator.device)
    correct = torch.zeros((), device=accelerator.device)
    count = torch.zeros((), device=accelerator.device)
    for raw in loader:
        batch = as_batch(raw)
        with accelerator.autocast():
            logits = model(batch["x"])
        logits, target = accelerator.gather_for_metrics((logits.float(), batch["y"]))
        loss_sum += nn.functional.cross_entropy(logits, target, reduction="sum")
        correct += (logits.argmax(-1) == target).sum()
        count += len(target)
    model.train()
    n = max(count.item(), 1.0)
    return {"val_loss": loss_sum.item() / n, "val_accuracy": correct.item() / n}


def _track_best(state: TrainState, record: dict, config: TrainConfig) -> bool:
    if config.monitor not in record:
        return False
    value = record[config.monitor]
    better = state.best_value is None or (
        value > state.best_value if config.monitor == "val_accuracy" else value < state.best_value
    )
    if better:
        state.best_value, state.best_epoch, state.bad_epochs = value, record["epoch"], 0
    else:
        state.bad_epochs += 1
    return better


def _save(accelerator, checkpointer: Checkpointer, state: TrainState, model, optimizer, scheduler, objective) -> None:
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        checkpointer.save(state, _plain(accelerator, model), optimizer, scheduler, objective)


def _finite_everywhere(loss: torch.Tensor, processes: int) -> bool:
    """Whether the loss is finite in every process (all must skip a step together, or DDP would hang)."""
    flag = torch.isfinite(loss.detach()).float().reshape(1)
    if processes > 1:
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MIN)
    return bool(flag.item())


def _skip_step(stage: str, state: TrainState, terms: dict, limit: int) -> None:
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


def _raise_not_finite(stage: str, state: TrainState, terms: dict) -> None:
    values = ", ".join(f"{k}={v.item():.4g}" for k, v in terms.items())
    raise TrainingError(
        f"stage {stage!r}: loss is not finite at epoch {state.epoch + 1}, step {state.global_step} ({values}); "
        f"lower the learning rate or set grad_clip; the last good checkpoint is kept"
    )


def _status(record: dict) -> str:
    parts = [f"loss {record['train_loss']:.4f}"]
    if "train_accuracy" in record:
        parts.append(f"acc {record['train_accuracy']:.1%}")
    if "val_accuracy" in record:
        parts.append(f"val {record['val_accuracy']:.1%}")
    return " ".join(parts)


def _summary(stage: str, result: FitResult) -> str:
    line = f"[bold]{stage}[/]: {len(result.history)} epochs in {result.seconds:.1f}s, {_status(result.final)}"
    if result.best_epoch is not None:
        best = result.history[result.best_epoch - 1]
        line += f"; best val {best['val_accuracy']:.1%} at epoch {result.best_epoch}"
    if result.stopped_early:
        line += " (stopped early)"
    return line
