"""The Hook contract: small, named moments of a training stage where a part observes or adds, never
takes the loop over (transfer strategies, L2-SP, the cached-feature probe, weight averaging; later EWC,
FedProx, replay buffers).

The loop calls every hook at each moment, in order:

=====================  =====================================================================================
``setup(run)``          stage start, before the optimizer exists: freeze parameters, transform the model
                        (adapters) or give the loop another view of the data (``run.model``, ``run.train``)
``param_groups(run)``   the optimizer's parameter groups (each with its own lr); None leaves the default
``on_epoch_start(run)`` after ``model.train()``: unfreeze on schedule, set BatchNorm modes
``loss_terms(run, batch, result)``  extra named loss terms (a regulariser), summed with the step's
``after_optimizer_step(run)``       once per optimizer step (weight averages, buffers)
``on_epoch_end(run, record)``       the epoch's record (the line of metrics.jsonl), in every process
``finish(run, model)``  stage end: the plain model to save (adapters merged, averaged weights swapped in)
=====================  =====================================================================================

A hook's ``state_dict`` goes into every checkpoint and comes back with ``load_state_dict`` on resume, so a
resumed stage continues exactly. Hooks hold tensors only through their state dicts (no pickled objects).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

if TYPE_CHECKING:
    from protege.engine.run import TrainingRun
    from protege.engine.step import StepResult


class Hook:
    """Does nothing at every moment; a hook overrides the moments it needs."""

    name: ClassVar[str] = "hook"

    def setup(self, run: TrainingRun) -> None:
        """Stage start, before the optimizer is built."""

    def param_groups(self, run: TrainingRun) -> list[dict] | None:
        """Optimizer parameter groups for the model, or None for the default decay / no-decay groups."""
        return None

    def on_epoch_start(self, run: TrainingRun) -> None:
        """After ``model.train()`` at the start of every epoch (also the first)."""

    def loss_terms(self, run: TrainingRun, batch: dict, result: StepResult) -> dict[str, torch.Tensor]:
        """Extra named loss terms for this batch."""
        return {}

    def after_optimizer_step(self, run: TrainingRun) -> None:
        """Once the optimizer has stepped (not on accumulation micro-batches)."""

    def on_epoch_end(self, run: TrainingRun, record: dict) -> None:
        """The finished epoch's record, validation included."""

    def finish(self, run: TrainingRun, model: nn.Module) -> nn.Module:
        """The model the stage ends with (the best epoch's weights are already restored)."""
        return model

    def state_dict(self) -> dict[str, Any]:
        """Tensors and plain values to checkpoint."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""


class Hooks:
    """Several hooks called in order at each moment; their names key their checkpointed state."""

    def __init__(self, hooks: Iterable[Hook] = ()):
        self.hooks = list(hooks)
        names = [hook.name for hook in self.hooks]
        if len(set(names)) != len(names):
            raise ValueError(f"two hooks share a name: {names}")

    def __iter__(self) -> Iterator[Hook]:
        return iter(self.hooks)

    def setup(self, run: TrainingRun) -> None:
        for hook in self.hooks:
            hook.setup(run)

    def param_groups(self, run: TrainingRun) -> list[dict] | None:
        """The first hook that gives groups decides them (a stage has one strategy)."""
        for hook in self.hooks:
            groups = hook.param_groups(run)
            if groups is not None:
                return groups
        return None

    def on_epoch_start(self, run: TrainingRun) -> None:
        for hook in self.hooks:
            hook.on_epoch_start(run)

    def loss_terms(self, run: TrainingRun, batch: dict, result: StepResult) -> dict[str, torch.Tensor]:
        terms: dict[str, torch.Tensor] = {}
        for hook in self.hooks:
            terms.update(hook.loss_terms(run, batch, result))
        return terms

    def after_optimizer_step(self, run: TrainingRun) -> None:
        for hook in self.hooks:
            hook.after_optimizer_step(run)

    def on_epoch_end(self, run: TrainingRun, record: dict) -> None:
        for hook in self.hooks:
            hook.on_epoch_end(run, record)

    def finish(self, run: TrainingRun, model: nn.Module) -> nn.Module:
        for hook in self.hooks:
            model = hook.finish(run, model)
        return model

    def state_dict(self) -> dict[str, dict]:
        return {hook.name: state for hook in self.hooks if (state := hook.state_dict())}

    def load_state_dict(self, states: dict[str, dict]) -> None:
        for hook in self.hooks:
            if hook.name in states:
                hook.load_state_dict(states[hook.name])
