"""Which process may write: under ``accelerate launch`` or ``torchrun`` every process runs the pipeline,
and only the main one (rank 0) touches the run directory and the terminal."""

from __future__ import annotations

import os


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """Rank 0, read from the launcher's environment (no process group needed)."""
    return int(os.environ.get("RANK", "0")) == 0


def use_cpu() -> bool:
    """True without a GPU (or Apple MPS): Accelerate then runs several processes on CPU with gloo,
    which it only does when told to use the CPU."""
    import torch

    return not torch.cuda.is_available() and not torch.backends.mps.is_available()


def wait_for_everyone() -> None:
    """A barrier across processes; nothing to wait for in a single process."""
    if world_size() > 1:
        from accelerate import PartialState

        PartialState(cpu=use_cpu()).wait_for_everyone()
