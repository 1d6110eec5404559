"""The batches of an epoch as dicts: the user's (inputs, targets) pairs or protege's dicts, in the memory
layout the model wants, each with the teacher's outputs attached when the step needs a teacher."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from protege.config import TrainConfig
from protege.data.dataset import ArrayDataset, batch_loader, first_inputs, fixed_inputs
from protege.data.lengths import cut_padding, pad_id_of
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
    batches: Iterable, signal: TeacherSignal | None, channels_last: bool, pad_id: int | None = None
) -> Iterator[dict[str, torch.Tensor]]:
    """The epoch's batches as dicts, each with the teacher's logits and tapped layers under
    ``teacher_logits`` / ``teacher_features`` when there is a teacher; with ``pad_id``, the student's
    token ids lose the columns that are padding in every row once the teacher has read them (padding per
    batch, as Hugging Face's dynamic padding)."""
    prepared = (_prepare(raw, channels_last) for raw in batches)
    if signal is not None:
        prepared = _with_teacher(prepared, signal)
    for batch in prepared:
        if pad_id is not None:
            batch["x"] = cut_padding(batch["x"], pad_id)
        yield batch


def _with_teacher(batches: Iterator[dict], signal: TeacherSignal) -> Iterator[dict[str, torch.Tensor]]:
    for batch, logits, features in signal.stream(batches):
        batch[TEACHER_LOGITS] = logits
        batch[TEACHER_FEATURES] = features
        yield batch


def padding_to_cut(model: nn.Module, step: object) -> int | None:
    """The padding id whose columns each training batch may lose: that of a model whose outputs do not
    depend on padding (protege.data.lengths), when the step reads no inner layers (their shapes would
    change with the batch, and a cached teacher's layers keep every position)."""
    objective = getattr(step, "objective", None)
    if getattr(step, "teacher_layers", ()) or getattr(objective, "student_layers", ()):
        return None
    return pad_id_of(model)


def _prepare(raw: object, channels_last: bool) -> dict[str, torch.Tensor]:
    batch = as_batch(raw)
    if channels_last:
        batch["x"] = batch["x"].contiguous(memory_format=torch.channels_last)
    return batch
