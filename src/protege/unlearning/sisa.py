"""SISA training (Bourtoule et al. 2021, "Machine Unlearning"): the training split is cut into disjoint
shards, each shard into slices; a shard's model learns its slices one after another (a checkpoint, here a
saved stage, after each), and the shard models answer together (their averaged probabilities, or a
majority vote). Forgetting an example retrains only the shards that held it, from the checkpoint before
the first slice that held one of them, without the forgotten examples: exact unlearning."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from protege.data.dataset import ArrayDataset
from protege.distill.ensemble import EnsembleTeacher


@dataclass
class ShardPlan:
    """The training positions of each shard's slices, in order."""

    slices: list[list[torch.Tensor]]

    @classmethod
    def cut(cls, size: int, shards: int, slices: int, seed: int) -> ShardPlan:
        order = torch.randperm(size, generator=torch.Generator().manual_seed(seed + 101))
        return cls([list(torch.tensor_split(part, slices)) for part in torch.tensor_split(order, shards)])

    def upto(self, shard: int, slice_: int, without: torch.Tensor | None = None) -> torch.Tensor:
        """The positions a shard's model has seen after ``slice_`` (from 1), less ``without``."""
        seen = torch.cat(self.slices[shard][:slice_])
        if without is not None and len(without):
            seen = seen[~torch.isin(seen, without)]
        return seen

    def first_touched(self, shard: int, forgotten: torch.Tensor) -> int | None:
        """The first slice (from 1) of ``shard`` that holds a forgotten position; None if none does."""
        for number, part in enumerate(self.slices[shard], start=1):
            if torch.isin(part, forgotten).any():
                return number
        return None


def subset(data: ArrayDataset, positions: torch.Tensor) -> ArrayDataset:
    return ArrayDataset(data.x[positions], data.y[positions], data.labeled[positions])


class MajorityVote(nn.Module):
    """The shard models' votes as log-shares (argmax: the most voted class; ties to the lower id)."""

    def __init__(self, models: list[nn.Module]):
        super().__init__()
        self.models = nn.ModuleList(models)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        votes = torch.stack([model(x).argmax(-1) for model in self.models])
        classes = self.models[0](x[:1]).shape[-1]
        counts = torch.nn.functional.one_hot(votes, classes).sum(0).float()
        return torch.log((counts + 1e-3) / (len(self.models) + 1e-3 * classes))


def aggregate(models: list[nn.Module], how: str) -> nn.Module:
    """The shard models as one: ``mean`` averages their probabilities, ``vote`` counts their top classes."""
    return EnsembleTeacher(models) if how == "mean" else MajorityVote(models)
