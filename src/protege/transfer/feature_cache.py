"""A linear probe on cached features: the frozen backbone runs once over the data, then only the head
trains, on its outputs, so a probe over thousands of examples takes seconds.

Exact (same result as running the backbone every step) when the backbone is frozen in eval mode and every
example's input is fixed: in-memory data, no random augmentation, no objective that taps inner layers or
needs a teacher. Anything else trains with the backbone online, and the log says why.

The probe is a hook (protege.hooks): at stage start it swaps in the head and the backbone's features as
the stage's model and data, so the one training loop trains it like any other stage.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import nn

from protege.console import log
from protege.data.dataset import ArrayDataset, fixed_inputs
from protege.data.lengths import in_order, inference_batches
from protege.inference_runtime import choose_runner, eager
from protege.models.taps import resolve_module
from protege.transfer.base import Strategy, StrategyHook

if TYPE_CHECKING:
    from protege.engine.run import TrainingRun
    from protege.engine.step import StepResult


class HeadOnly(nn.Module):
    """The model's ``forward_head`` on precomputed features; only the head's parameters are registered."""

    def __init__(self, model: nn.Module, head_path: str):
        super().__init__()
        self.head = resolve_module(model, head_path)
        object.__setattr__(self, "_model", model)  # not a submodule: its backbone must not be optimised

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self._model.forward_head(features)


def cache_refusal(model: nn.Module, train: object, val: object, needs_teacher: bool, taps: bool) -> str | None:
    """Why features cannot be cached for this run, or None when they can."""
    if not (callable(getattr(model, "forward_features", None)) and callable(getattr(model, "forward_head", None))):
        return "the model has no forward_features/forward_head"
    if not fixed_inputs(train) or not (val is None or fixed_inputs(val)):
        return (
            getattr(train, "changes", None)
            or "the data is not an in-memory data set (its inputs may change between epochs)"
        )
    if needs_teacher:
        return "the objective needs a teacher"
    if taps:
        return "the objective reads inner layers"
    return None


@torch.no_grad()
def compute_features(
    model: nn.Module,
    data: ArrayDataset,
    device: torch.device,
    batch_size: int = 256,
    runner: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> ArrayDataset:
    """The backbone's features of every example (eval mode), on the CPU, with the examples' targets (token
    ids read grouped by length, protege.data.lengths); computed by ``runner`` (another runtime of
    ``forward_features``, protege.inference_runtime) when one is given."""
    model.eval()
    forward = runner if runner is not None else eager(model, "forward_features")
    chunks, indices = [], []
    for batch in inference_batches(model, data, batch_size):
        chunks.append(forward(batch["x"].to(device)).float().cpu())
        indices.append(batch["index"])
    return ArrayDataset(in_order(chunks, indices), data.y, data.labeled)


class CachedFeaturesProbe(StrategyHook):
    """A linear probe whose backbone runs once: its features replace the inputs and the head alone is the
    model, when that gives exactly what running the backbone every step would (feature_cache.py);
    otherwise it is a plain strategy hook, and the log says why."""

    def __init__(self, strategy: Strategy):
        super().__init__(strategy)
        self.cached = False
        self.full_model: nn.Module | None = None

    def setup(self, run: TrainingRun) -> None:
        step = run.step
        taps = bool(getattr(getattr(step, "objective", None), "student_layers", ()))
        reason = cache_refusal(run.model, run.train, run.val, step.needs_teacher, taps)
        if reason is not None:
            if run.accelerator.is_main_process:
                log(f"[bold]{run.stage}[/]: backbone runs online ({reason})")
            super().setup(run)
            return
        started = time.perf_counter()
        model = self.strategy.prepare(run.model)
        self.strategy.start_epoch(0)
        device = run.accelerator.device
        model.to(device)
        examples = len(run.train) + (len(run.val) if run.val is not None else 0)
        config = run.config
        runner = choose_runner(model, examples, requested=config.inference_runtime, method="forward_features",
                               tolerance=config.inference_tolerance, what=f"{run.stage}: backbone runtime")  # fmt: skip
        run.train = compute_features(model, run.train, device, runner=runner)
        run.val = compute_features(model, run.val, device, runner=runner) if run.val is not None else None
        if run.accelerator.is_main_process:
            log(
                f"[bold]{run.stage}[/]: backbone features cached ({len(run.train)} examples × "
                f"{run.train.x.shape[1]}, {time.perf_counter() - started:.1f}s); only the head trains"
            )
        self.cached, self.full_model = True, model
        run.model = HeadOnly(model, self.strategy.prepared_split().head_path)

    def param_groups(self, run: TrainingRun) -> list[dict] | None:
        return None if self.cached else super().param_groups(run)

    def on_epoch_start(self, run: TrainingRun) -> None:
        if not self.cached:
            super().on_epoch_start(run)

    def loss_terms(self, run: TrainingRun, batch: dict, result: StepResult) -> dict[str, torch.Tensor]:
        return {} if self.cached else super().loss_terms(run, batch, result)

    def finish(self, run: TrainingRun, model: nn.Module) -> nn.Module:
        return self.strategy.finalize(self.full_model if self.cached else model)
