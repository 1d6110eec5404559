"""Interrupting a run in-process after a number of training steps, to test that resume continues it exactly."""

from __future__ import annotations

import protege.engine.loop as loop


class Stop(Exception):
    """Raised in place of the training step the counter was told to stop at."""


class StepCounter:
    """Counts calls of the loop's ``train_step`` (patched with ``monkeypatch``) and raises :class:`Stop` at
    the call ``stop_at``, if set; ``n`` is the count since the last ``reset``."""

    def __init__(self, monkeypatch) -> None:
        self.n, self.stop_at = 0, None
        original = loop.train_step

        def counting(run_state, batch):
            self.n += 1
            if self.n == self.stop_at:
                raise Stop
            return original(run_state, batch)

        monkeypatch.setattr(loop, "train_step", counting)

    def reset(self, stop_at: int | None = None) -> None:
        self.n, self.stop_at = 0, stop_at
