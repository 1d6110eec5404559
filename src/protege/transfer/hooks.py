"""A transfer strategy at the loop's moments (protege.hooks): it freezes and transforms the model at stage
start, gives the optimizer its parameter groups, unfreezes on schedule, adds its penalty (L2-SP) and merges
adapters at the end. The cached-feature linear probe is a hook too: it swaps in the head and the
backbone's features as the stage's model and data, so the loop trains it like any other stage."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import torch
from torch import nn

from protege.console import log
from protege.hooks import Hook
from protege.transfer.base import Strategy
from protege.transfer.feature_cache import HeadOnly, cache_refusal, compute_features

if TYPE_CHECKING:
    from protege.engine.run import TrainingRun
    from protege.engine.step import StepResult


class StrategyHook(Hook):
    """Calls the strategy at each moment."""

    name = "strategy"

    def __init__(self, strategy: Strategy):
        self.strategy = strategy

    def setup(self, run: TrainingRun) -> None:
        # frozen before the optimizer and any distributed wrapper see the model
        run.model = self.strategy.prepare(run.model)
        self.strategy.check_processes(run.accelerator.num_processes, run.config.epochs)
        self.strategy.start_epoch(0)

    def param_groups(self, run: TrainingRun) -> list[dict] | None:
        return self.strategy.param_groups(run.config.lr, run.config.weight_decay)

    def on_epoch_start(self, run: TrainingRun) -> None:
        self.strategy.start_epoch(run.state.epoch)

    def loss_terms(self, run: TrainingRun, batch: dict, result: StepResult) -> dict[str, torch.Tensor]:
        return self.strategy.loss_terms()

    def finish(self, run: TrainingRun, model: nn.Module) -> nn.Module:
        return self.strategy.finalize(model)


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
        run.train = compute_features(model, run.train, device)
        run.val = compute_features(model, run.val, device) if run.val is not None else None
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
