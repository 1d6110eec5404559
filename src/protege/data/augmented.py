"""A training set whose batches are augmented (protege.data.augment) where they are read: in the DataLoader's
worker processes for streamed image folders, in the training process for tensors in memory.

Every random draw is seeded from (seed, epoch, example), and a batch's mixing from (seed, epoch, its first
example), never from a process's random state: the same recipe gives the same augmented batches whichever
worker reads them, and a run resumed mid-epoch draws exactly what the uninterrupted one drew.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from protege.data.augment import Augmentation
from protege.data.dataset import EpochBatchSampler
from protege.errors import ConfigError

CHANGES = "train.augment draws new inputs every epoch, and the teacher sees the student's augmented batch"
"""Why a teacher runs online over an augmented training set (function matching, Beyer et al. 2022)."""
MIXING = 1
"""Tells a batch's mixing seed from its first example's transform seed."""


class EpochIndices(list):
    """A batch's example indices with the epoch they are drawn for; they travel to a worker process with it."""

    def __init__(self, indices: Sequence[int], epoch: int) -> None:
        super().__init__(indices)
        self.epoch = epoch


class EpochTaggedSampler(EpochBatchSampler):
    """An :class:`EpochBatchSampler` whose batches carry their epoch (:class:`EpochIndices`)."""

    def __iter__(self) -> Iterator[list[int]]:
        for indices in super().__iter__():
            yield EpochIndices(indices, self.epoch)


def draw_seed(*values: int) -> int:
    """A seed from several integers (numpy's SeedSequence mixes them, so nearby values draw unrelated streams)."""
    return int(np.random.SeedSequence([int(v) for v in values]).generate_state(1)[0])


class EpochDrawn(Dataset):
    """A training set whose examples depend on the epoch (fresh augmentations, or cached views cycled by
    epoch) over a ``base`` dataset: its size, shape and targets, and batches that carry their epoch."""

    base: Dataset

    def __len__(self) -> int:
        return len(self.base)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.base.input_shape)

    @property
    def y(self) -> torch.Tensor:
        return self.base.y

    @property
    def labeled(self) -> torch.Tensor:
        return self.base.labeled

    def batch_sampler(self, batch_size: int, shuffle: bool, seed: int) -> EpochTaggedSampler:
        """Batches by (seed, epoch), as :class:`EpochBatchSampler`, each carrying its epoch to the workers."""
        return EpochTaggedSampler(len(self), batch_size, shuffle, seed)


class AugmentedDataset(EpochDrawn):
    """``base`` (a dataset that serves whole batches: in memory, or streamed images) with ``augmentation``
    applied to every batch it serves; ``num_classes`` sizes a mixed batch's soft targets."""

    fixed_inputs = False
    changes = CHANGES

    def __init__(self, base: Dataset, augmentation: Augmentation, seed: int, num_classes: int | None) -> None:
        self.base = base
        self.augmentation = augmentation
        self.seed = seed
        self.mixup = None
        if augmentation.mixing is not None:
            from timm.data import Mixup

            if num_classes is None:
                raise ConfigError(
                    f"{augmentation.names[-1]} needs the number of classes: give the data as a DataBundle or a "
                    "source name, or pass num_classes to fit"
                )
            self.mixup = Mixup(**augmentation.mixing, label_smoothing=0.0, num_classes=num_classes)
        self.num_classes = num_classes

    @property
    def num_workers(self) -> int:
        return getattr(self.base, "num_workers", 0)

    def __getitems__(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        epoch = getattr(indices, "epoch", 0)  # a sample read outside an epoch (a shape) is drawn as epoch 0's
        batch = self.base.__getitems__(list(indices))
        if self.augmentation.per_example is not None:
            batch["x"] = self.transformed(batch["x"], batch["index"], epoch)
        if self.mixup is not None and len(batch["x"]) > 1:
            self._mix(batch, epoch)
        return batch

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        batch = self.__getitems__([i])
        return {key: value[0] for key, value in batch.items()}

    def transformed(self, x: torch.Tensor, index: torch.Tensor, epoch: int) -> torch.Tensor:
        """Each example through the per-example transforms, torch's random state seeded for that example and
        epoch (and the caller's state left as it was)."""
        transform = self.augmentation.per_example
        rows = []
        with torch.random.fork_rng(devices=[]):
            for row, i in zip(x, index.tolist(), strict=True):
                # not torch.manual_seed, which also seeds every CUDA device and costs 100× more
                torch.default_generator.manual_seed(draw_seed(self.seed, epoch, i))
                rows.append(transform(row))
        return torch.stack(rows).to(x.dtype)

    def _mix(self, batch: dict[str, torch.Tensor], epoch: int) -> None:
        """timm's Mixup over the batch's even part (it pairs example i with example n−1−i); an odd last
        example keeps its own one-hot target. A pair with an unlabelled example is unlabelled."""
        from timm.data.mixup import mixup_target

        x, labeled = batch["x"], batch["labeled"]
        ids = torch.where(labeled, batch["y"], torch.zeros_like(batch["y"]))
        even = len(x) - len(x) % 2
        state = np.random.get_state()  # timm draws λ and the boxes from numpy's global generator
        try:
            np.random.seed(draw_seed(self.seed, epoch, int(batch["index"][0]), MIXING) % 2**32)
            mixed, soft = self.mixup(x[:even].clone(), ids[:even])
        finally:
            np.random.set_state(state)
        rest = mixup_target(ids[even:], self.num_classes, 1.0, 0.0)
        batch["x"] = torch.cat([mixed, x[even:]])
        batch["y"] = torch.cat([soft, rest]).float()
        batch["labeled"] = labeled & torch.cat([labeled[:even].flip(0), labeled[even:]])

    def fingerprint(self) -> str | None:
        """The base data's fingerprint with the augmentations (other augmentations: another training set)."""
        base = getattr(self.base, "fingerprint", None)
        if not callable(base):
            return None
        digest = hashlib.sha1(base().encode())
        digest.update(
            repr((self.augmentation.names, self.augmentation.mixing, str(self.augmentation.per_example))).encode()
        )
        return digest.hexdigest()[:16]
