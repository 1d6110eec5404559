"""In-memory datasets whose batches carry more per-example tensors than inputs and targets: a continual
stream's task ids, a replay buffer's stored logits, which examples are replayed or to be forgotten."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch

from protege.data.dataset import ArrayDataset


class TaggedDataset(ArrayDataset):
    """An in-memory dataset whose batches carry more per-example tensors (``task``: the experience;
    ``stored``: logits a replay buffer kept; ``replayed``: the example comes from the buffer)."""

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        labeled: torch.Tensor | None = None,
        extras: dict[str, torch.Tensor] | None = None,
    ):
        super().__init__(x, y, labeled)
        self.extras = dict(extras or {})
        for key, values in self.extras.items():
            if len(values) != len(y):
                raise ValueError(f"{key}: {len(values)} values for {len(y)} examples")

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {**super().__getitem__(i), **{key: values[i] for key, values in self.extras.items()}}

    def __getitems__(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        batch = super().__getitems__(indices)
        idx = batch["index"]
        batch.update({key: values.index_select(0, idx) for key, values in self.extras.items()})
        return batch

    def subset(self, idx: torch.Tensor) -> TaggedDataset:
        """The examples at ``idx``, with their extras."""
        return TaggedDataset(
            self.x[idx], self.y[idx], self.labeled[idx], {key: values[idx] for key, values in self.extras.items()}
        )

    def fingerprint(self) -> str:
        digest = hashlib.sha1(super().fingerprint().encode())
        for key in sorted(self.extras):
            digest.update(key.encode())
            digest.update(self.extras[key].contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]


def join(parts: Sequence[TaggedDataset]) -> TaggedDataset:
    """Several tagged datasets as one (the experiences seen so far; new examples and a buffer); extras
    that some parts lack are filled (``stored`` logits with NaN, flags with False)."""
    keys = sorted({key for part in parts for key in part.extras})
    extras = {}
    for key in keys:
        like = next(part.extras[key] for part in parts if key in part.extras)
        extras[key] = torch.cat([_extra_or_fill(part, key, like) for part in parts])
    return TaggedDataset(
        torch.cat([part.x for part in parts]),
        torch.cat([part.y for part in parts]),
        torch.cat([part.labeled for part in parts]),
        extras,
    )


def _extra_or_fill(part: TaggedDataset, key: str, like: torch.Tensor) -> torch.Tensor:
    if key in part.extras:
        return part.extras[key]
    fill = float("nan") if like.is_floating_point() else 0
    return torch.full((len(part), *like.shape[1:]), fill, dtype=like.dtype)
