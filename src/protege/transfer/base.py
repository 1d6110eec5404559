"""The Strategy contract: which parameters train, at which learning rate, in which epoch, and how
BatchNorm behaves in the frozen parts. The engine calls a strategy as plain values, never subclasses the loop.

Every group is in the optimizer from the first step (frozen ones with ``requires_grad=False``, which the
optimizer skips), so its state dict has the same structure before and after an unfreezing step and a
checkpoint taken before one resumes exactly after it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

from protege.errors import ConfigError
from protege.hooks import Hook
from protege.transfer.batchnorm import BatchNormPolicy, apply_batchnorm_policy, batchnorm_layers
from protege.transfer.checkpointing import enable_gradient_checkpointing
from protege.transfer.split import Group, ModelSplit, split_model

if TYPE_CHECKING:
    from protege.engine.run import TrainingRun
    from protege.engine.step import StepResult


class Strategy:
    """Train every group at one learning rate; the registered strategies freeze, scale or regularise groups.

    ``head`` and ``blocks`` override where the head and the blocks are (module paths; ``blocks`` may be a
    glob such as ``encoder.layer.*``); ``batchnorm`` is the BatchNorm policy of frozen parts.
    """

    name: ClassVar[str] = "strategy"
    replaces_weight_decay: ClassVar[bool] = False

    def __init__(
        self,
        head: str | None = None,
        blocks: str | None = None,
        batchnorm: BatchNormPolicy = "frozen_stats",
        gradient_checkpointing: bool = False,
    ):
        self.head = head
        self.blocks = blocks
        self.batchnorm = batchnorm
        self.gradient_checkpointing = gradient_checkpointing
        self.split: ModelSplit | None = None
        self._batchnorm_layers: dict[str, nn.modules.batchnorm._BatchNorm] = {}

    def prepare(self, model: nn.Module) -> nn.Module:
        """Find the groups (and transform the model, for adapters) before the optimizer is built."""
        self.split = split_model(model, self.head, self.blocks)
        self._batchnorm_layers = batchnorm_layers(model)
        if self.gradient_checkpointing:
            enable_gradient_checkpointing(model, self.split.block_paths)
        return model

    def lr_scale(self, group: Group) -> float:
        """This group's learning rate as a multiple of the recipe's ``lr``."""
        return 1.0

    def trainable(self, group: Group, epoch: int) -> bool:
        """Whether ``group`` trains in ``epoch`` (counted from 0)."""
        return True

    def param_groups(self, lr: float, weight_decay: float) -> list[dict]:
        """Optimizer groups named ``<group>`` and ``<group>.no_decay`` (biases and norms, as timm), each at
        its own learning rate, which the schedule then scales."""
        groups = []
        for group in self.prepared_split().groups:
            decay = [p for p in group.params.values() if p.ndim > 1]
            no_decay = [p for p in group.params.values() if p.ndim <= 1]
            rate = lr * self.lr_scale(group)
            wd = 0.0 if self.replaces_weight_decay else weight_decay
            if decay:
                groups.append({"name": group.name, "params": decay, "lr": rate, "weight_decay": wd})
            if no_decay:
                groups.append({"name": f"{group.name}.no_decay", "params": no_decay, "lr": rate, "weight_decay": 0.0})
        return groups

    def start_epoch(self, epoch: int) -> None:
        """Freeze and unfreeze groups for ``epoch`` and set BatchNorm modes; call after every ``model.train()``."""
        split = self.prepared_split()
        frozen = set()
        for group in split.groups:
            trains = self.trainable(group, epoch)
            if not trains:
                frozen.add(group.name)
            for param in group.params.values():
                param.requires_grad_(trains)
        frozen_layers = {path for path in self._batchnorm_layers if split.group_of_module(path) in frozen}
        apply_batchnorm_policy(self._batchnorm_layers, frozen_layers, self.batchnorm)

    def check_processes(self, processes: int, epochs: int) -> None:
        """Refuse a schedule that unfreezes mid-run under several processes: DistributedDataParallel fixes
        the set of synchronised parameters when it wraps the model, so late-unfrozen ones would drift apart."""
        groups = self.prepared_split().groups
        if processes > 1 and any(len({self.trainable(g, e) for e in range(epochs)}) > 1 for g in groups):
            raise ConfigError(
                f"strategy {self.name!r} unfreezes parameters during training, which {processes} processes "
                f"cannot synchronise; run it in one process or use finetune / discriminative_lr"
            )

    def loss_terms(self) -> dict[str, torch.Tensor]:
        """Extra named loss terms (a regulariser); none by default."""
        return {}

    def finalize(self, model: nn.Module) -> nn.Module:
        """The plain model to save and export once training ends (adapters merged)."""
        return model

    def as_hook(self) -> Hook:
        """The strategy at the training loop's moments (protege.hooks)."""
        return StrategyHook(self)

    def schedule(self, epochs: int) -> dict[str, str]:
        """When each group trains, in words, for the dry run."""
        out = {}
        for group in self.prepared_split().groups:
            on = [e for e in range(epochs) if self.trainable(group, e)]
            out[group.name] = "frozen" if not on else "all epochs" if len(on) == epochs else f"from epoch {on[0] + 1}"
        return out

    def prepared_split(self) -> ModelSplit:
        if self.split is None:
            raise RuntimeError("call prepare(model) before using the strategy")
        return self.split


class StrategyHook(Hook):
    """A strategy at the loop's moments (protege.hooks): it freezes and transforms the model at stage start,
    gives the optimizer its parameter groups, unfreezes on schedule, adds its penalty (L2-SP) and merges
    adapters at the end."""

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


def group_rows(strategy: Strategy, lr: float, epochs: int) -> list[tuple[str, int, int, float, str]]:
    """(group, parameters, trainable parameters in the first epoch, lr, when it trains) per group, for the dry run."""
    when = strategy.schedule(epochs)
    rows = []
    for group in strategy.prepared_split().groups:
        trainable = sum(p.numel() for p in group.params.values() if p.requires_grad)
        rows.append((group.name, group.size, trainable, lr * strategy.lr_scale(group), when[group.name]))
    return rows
