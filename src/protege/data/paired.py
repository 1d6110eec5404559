"""Training batches that pair two sets of examples, as experience replay draws new and replayed ones
(Chaudhry et al. 2019; Avalanche's replay loader) and unlearning draws retained and forgotten ones: each
step takes ``batch_size`` examples of the first set and ``batch_size`` of the second, so an epoch is one
pass over the first and the second is cycled through as often as that takes. The order depends on
(seed, epoch) only, so a resumed epoch sees the same batches."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from protege.data.dataset import EpochBatchSampler
from protege.data.tagged import TaggedDataset, join


class PairedBatches(EpochBatchSampler):
    """Batches of ``batch_size`` new examples (positions 0..new−1) plus ``batch_size`` replayed ones (the
    positions after them)."""

    def __init__(self, new: int, replayed: int, batch_size: int, seed: int):
        super().__init__(new + replayed, batch_size, shuffle=True, seed=seed)
        self.new, self.replayed = new, replayed

    def __len__(self) -> int:
        return math.ceil(self.new / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        new = torch.randperm(self.new, generator=generator)
        size = self.batch_size
        rounds = math.ceil(len(self) * size / self.replayed)
        memory = torch.cat([torch.randperm(self.replayed, generator=generator) for _ in range(rounds)]) + self.new
        for b in range(self.skip, len(self)):
            chunk = new[b * size : (b + 1) * size]
            yield chunk.tolist() + memory[b * size : b * size + len(chunk)].tolist()


class PairedSet(TaggedDataset):
    """The examples of ``first`` followed by those of ``second``, each of the second flagged ``flag``; its
    training batches pair the two (:class:`PairedBatches`), any other pass reads every example once, in order."""

    def __init__(self, first: TaggedDataset, second: TaggedDataset, flag: str = "replayed"):
        ones, zeros = torch.ones(len(second), dtype=torch.bool), torch.zeros(len(first), dtype=torch.bool)
        joined = join([
            TaggedDataset(first.x, first.y, first.labeled, {**first.extras, flag: zeros}),
            TaggedDataset(second.x, second.y, second.labeled, {**second.extras, flag: ones}),
        ])  # fmt: skip
        super().__init__(joined.x, joined.y, joined.labeled, joined.extras)
        self.new_count, self.replayed_count = len(first), len(second)

    def batch_sampler(self, batch_size: int, shuffle: bool, seed: int) -> EpochBatchSampler | None:
        if not shuffle:
            return None
        return PairedBatches(self.new_count, self.replayed_count, batch_size, seed)


def with_replay(new: TaggedDataset, buffer: TaggedDataset | None) -> TaggedDataset:
    """The experience's training data, paired with the buffer's examples when it has any."""
    if buffer is None or len(buffer) == 0:
        return TaggedDataset(
            new.x, new.y, new.labeled, {**new.extras, "replayed": torch.zeros(len(new), dtype=torch.bool)}
        )
    return PairedSet(new, buffer)
