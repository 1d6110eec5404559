"""Inference over token ids grouped by length: an inference pass (teacher labelling, cached features,
evaluation) does not depend on the order of its examples, so it reads them longest first in batches of
similar length, each cut to its own longest text (padding per batch, as Hugging Face's dynamic padding
does), and puts every output back in the examples' order. A transformer then spends no compute on the
padding of short texts padded to the length of the longest one in the data set."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from protege.data.dataset import ArrayDataset, batch_loader


def pad_id_of(model: nn.Module) -> int | None:
    """The padding id of a model that reads token ids padded on the right and whose outputs per example do
    not depend on that padding (protege's Hugging Face classifier); None for any other model."""
    for candidate in (model, getattr(model, "module", None), getattr(model, "_orig_mod", None)):
        pad = getattr(candidate, "pad_token_id", None)
        if isinstance(pad, int) and not isinstance(pad, bool):
            return pad
    return None


def token_lengths(ids: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Per row, the position just after its last token that is not padding (0 for a row of padding)."""
    positions = torch.arange(1, ids.shape[1] + 1, device=ids.device)
    return ((ids != pad_id) * positions).amax(1)


def cut_padding(ids: torch.Tensor, pad_id: int) -> torch.Tensor:
    """A batch of right-padded token ids without the columns that are padding in every row (at least one
    column kept); any other input as it is."""
    if not _token_ids(ids):
        return ids
    longest = max(int(token_lengths(ids, pad_id).max()), 1)
    return ids if longest == ids.shape[1] else ids[:, :longest]


def groups_by_length(model: nn.Module, dataset: object) -> bool:
    """Whether an inference pass of ``model`` over ``dataset`` may read it grouped by length: in-memory token
    ids (a 2-D integer tensor) read by a model whose outputs do not depend on the padding."""
    if pad_id_of(model) is None or type(dataset) is not ArrayDataset:
        return False
    return _token_ids(dataset.x)


def _token_ids(x: torch.Tensor) -> bool:
    """Whether ``x`` may be a batch of token ids with columns to cut: a 2-D integer tensor of 2 columns or more."""
    return x.dim() == 2 and not x.is_floating_point() and x.shape[1] > 1


def inference_batches(model: nn.Module, dataset: object, batch_size: int) -> Iterator[dict[str, torch.Tensor]]:
    """The batches of one inference pass: grouped by length and cut to their longest text where
    :func:`groups_by_length` allows, else the dataset's batches in order. Each batch's ``index`` says which
    examples it holds, so outputs go back to their place whatever the order."""
    if not groups_by_length(model, dataset):
        yield from batch_loader(dataset, batch_size)  # type: ignore[arg-type]
        return
    assert isinstance(dataset, ArrayDataset)
    lengths = token_lengths(dataset.x, pad_id_of(model))  # type: ignore[arg-type]
    order = torch.argsort(lengths, descending=True, stable=True)
    for rows in order.split(batch_size):
        batch = dataset.__getitems__(rows.tolist())
        batch["x"] = batch["x"][:, : max(int(lengths[rows[0]]), 1)]  # longest first: the first row is the longest
        yield batch


def in_order(outputs: list[torch.Tensor], indices: list[torch.Tensor]) -> torch.Tensor:
    """The concatenated ``outputs`` of batches holding the examples ``indices``, in the examples' order."""
    values = torch.cat(outputs)
    order = torch.cat(indices).to(values.device)
    if torch.equal(order, torch.arange(len(order), device=order.device)):
        return values
    placed = torch.empty_like(values)
    placed[order] = values
    return placed
