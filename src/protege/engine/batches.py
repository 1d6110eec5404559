"""The batches of an epoch as dicts: the user's (inputs, targets) pairs or protege's dicts, in the memory
layout the model wants, each with the teacher's outputs attached when the step needs a teacher."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
from torch.utils.data import DataLoader, Dataset

from protege.config import TrainConfig
from protege.data.dataset import ArrayDataset, batch_loader, first_inputs, fixed_inputs
from protege.distill.teacher import TeacherSignal, online_lookahead
from protege.engine.step import TEACHER_FEATURES, TEACHER_LOGITS
from protege.errors import ProtegeError


def as_batch(batch: object) -> dict[str, torch.Tensor]:
    """Accept dict batches (protege's) and (inputs, targets) tuples (most user DataLoaders)."""
    if isinstance(batch, dict):
        return batch
    if isinstance(batch, (list, tuple)) and len(batch) >= 2:
        return {"x": batch[0], "y": batch[1]}
    raise ProtegeError("a batch must be a dict with 'x' and 'y' or an (inputs, targets) pair")


def loader_for(data: Dataset | DataLoader, batch_size: int, shuffle: bool, seed: int) -> DataLoader:
    """The user's DataLoader as given, or protege's seeded, resumable loader over a dataset."""
    if isinstance(data, DataLoader):
        return data
    return batch_loader(data, batch_size, shuffle=shuffle, seed=seed)


def sample_inputs(loader: DataLoader) -> torch.Tensor:
    """A couple of inputs for parts that size themselves on a dry run (adapters)."""
    if isinstance(loader.dataset, ArrayDataset) or hasattr(loader.dataset, "input_shape"):
        return first_inputs(loader.dataset, 2)  # without starting the loader's workers
    return as_batch(next(iter(loader)))["x"][:2]


def teacher_lookahead(config: TrainConfig, device: torch.device, loader: DataLoader, cache: str) -> int:
    """Training batches per online teacher forward (1 under gradient accumulation: Accelerate finds the
    last batch of an epoch by reading one ahead, and a longer look-ahead would move that point)."""
    if config.grad_accumulation > 1 or (cache != "off" and fixed_inputs(loader.dataset)):
        return 1  # a dataset whose inputs never change is cached, unless the cache is switched off
    example = sample_inputs(loader)[0]
    return online_lookahead(
        device, config.batch_size, example.nelement() * example.element_size(), config.teacher_batch_size
    )


def epoch_batches(
    batches: Iterable, signal: TeacherSignal | None, channels_last: bool
) -> Iterator[dict[str, torch.Tensor]]:
    """The epoch's batches as dicts, each with the teacher's logits and tapped layers under
    ``teacher_logits`` / ``teacher_features`` when there is a teacher."""
    prepared = (_prepare(raw, channels_last) for raw in batches)
    if signal is None:
        yield from prepared
        return
    for batch, logits, features in signal.stream(prepared):
        batch[TEACHER_LOGITS] = logits
        batch[TEACHER_FEATURES] = features
        yield batch


def _prepare(raw: object, channels_last: bool) -> dict[str, torch.Tensor]:
    batch = as_batch(raw)
    if channels_last:
        batch["x"] = batch["x"].contiguous(memory_format=torch.channels_last)
    return batch
