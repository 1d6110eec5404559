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


def _group_size() -> int:
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def gather_rows(tensor):
    """Concatenate ``tensor`` (rows may differ in number) from every process, in rank order; the
    tensor itself in a single process. Memory banks use it so every process records every example."""
    import torch
    import torch.distributed as dist

    if _group_size() == 1:
        return tensor
    sizes = [torch.zeros(1, dtype=torch.long, device=tensor.device) for _ in range(_group_size())]
    dist.all_gather(sizes, torch.tensor([len(tensor)], device=tensor.device))
    largest = int(max(s.item() for s in sizes))
    padded = torch.zeros((largest, *tensor.shape[1:]), dtype=tensor.dtype, device=tensor.device)
    padded[: len(tensor)] = tensor
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    return torch.cat([part[: int(size.item())] for part, size in zip(parts, sizes, strict=True)])


def mean_across_processes(tensor):
    """The mean of ``tensor`` over processes (in place), so a statistic estimated on one batch is shared."""
    import torch.distributed as dist

    if _group_size() > 1:
        dist.all_reduce(tensor)
        tensor /= _group_size()
    return tensor
