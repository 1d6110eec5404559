"""Plain callables at the end of every epoch (experiment trackers) as a hook."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from protege.hooks import Hook

if TYPE_CHECKING:
    from protege.engine.run import TrainingRun


class EpochCallbacks(Hook):
    """Hands each epoch's record to every callback, in the main process only."""

    name = "epoch_callbacks"

    def __init__(self, callbacks: Sequence[Callable[[dict], None]] = ()):
        self.callbacks = list(callbacks)

    def on_epoch_end(self, run: TrainingRun, record: dict) -> None:
        if run.accelerator.is_main_process:
            for callback in self.callbacks:
                callback(record)
