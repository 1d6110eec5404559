"""A training set of K augmented views per example, drawn once (``train.augment_views``), so a frozen
teacher labels all K×N views once and the student reads view ``epoch mod K`` of each example.

View k of example i is what :class:`protege.data.augmented.AugmentedDataset` would draw for it in epoch k
(its per-example transforms seeded from (seed, k, i)): with K ≥ the epochs, the student reads exactly the
fresh-draw batches. With fewer, it is an approximation of function matching (Beyer et al. 2022): every
example comes back to the same K views, and the teacher's outputs for them are looked up, not recomputed.
The teacher cache is keyed by the view's row, k·N + i (``TEACHER_ROW`` in each batch); ``index`` stays the
example's position, which objectives with a memory bank (CRD) read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch

from protege.data.augment import Augmentation
from protege.data.augmented import AugmentedDataset, EpochDrawn
from protege.data.dataset import ArrayDataset
from protege.errors import ConfigError

VIEWS_LIMIT_BYTES = 2 * 1024**3
"""At most this much memory for the K×N views (as the teacher cache's ``MEMORY_LIMIT_BYTES``)."""
TEACHER_ROW = "teacher_row"
"""The batch key of each example's view row, k·N + i, by which a cached teacher looks its outputs up."""
CHUNK = 512
"""Examples transformed at once while the views are drawn."""


def check_views(base: object, views: int, where: str = "train.augment_views") -> None:
    """Refuse views that cannot be kept: of examples streamed from files, or taking more than
    ``VIEWS_LIMIT_BYTES``, in one line each."""
    if not isinstance(base, ArrayDataset):
        raise ConfigError(
            f"{where}: {views} views of every example are kept in memory, and the training examples are streamed "
            "from files; set data.options.load: memory, or remove augment_views (the teacher then runs online)"
        )
    size = views * base.x.numel() * base.x.element_size()
    if size > VIEWS_LIMIT_BYTES:
        raise ConfigError(
            f"{where}: {views} views of {len(base):,} examples would take {_size(size)} of memory (at most "
            f"{_size(VIEWS_LIMIT_BYTES)}); give fewer views, or remove augment_views (the teacher then runs online "
            "on fresh draws)"
        )


def _size(count: int) -> str:
    """Bytes as GiB, or as MiB below a tenth of one."""
    return f"{count / 1024**3:.1f} GiB" if count >= 1024**3 / 10 else f"{count / 1024**2:.1f} MiB"


def check_no_mixing(augmentation: Augmentation, where: str = "train.augment_views") -> None:
    """Mixup and CutMix mix whole batches, whose pairs change every epoch: no view of one example holds them."""
    if augmentation.mixing is not None:
        raise ConfigError(
            f"{where}: {augmentation.names[-1]} mixes each batch anew, which no cached view of one example can "
            "hold; remove it, or remove augment_views (the teacher then runs online on the mixed batches)"
        )


class CachedViews(EpochDrawn):
    """``base`` (in memory) read through ``views`` augmented versions of each example, view ``epoch mod
    views`` in each epoch; :attr:`teacher_rows` holds all of them, row k·N + i, for the teacher to label."""

    fixed_inputs = False
    """An example's input changes with the epoch (a linear probe must not cache its features)."""

    def __init__(self, base: ArrayDataset, augmentation: Augmentation, seed: int, views: int) -> None:
        check_views(base, views)
        check_no_mixing(augmentation)
        self.base = base
        self.views = views
        self.names = augmentation.names
        draw = AugmentedDataset(base, augmentation, seed, None)
        self.inputs = torch.cat([_drawn(draw, base, k) for k in range(views)])
        self.teacher_rows = ArrayDataset(self.inputs, torch.cat([base.y] * views), torch.cat([base.labeled] * views))
        """Every view of every example, in row order k·N + i: what a cached teacher labels."""
        self._fingerprint: str | None = None

    @property
    def changes(self) -> str:
        """Why a teacher over these views runs online when it is not cached (``teacher_cache: off``)."""
        return f"train.augment_views cycles {self.views} augmented views per example by epoch"

    @property
    def approximation(self) -> str:
        """The log's note that cached views approximate function matching."""
        k = self.views
        return (
            f"on {k} augmented view(s) per example ({len(self.inputs):,} rows): an approximation of function "
            f"matching — the student sees each view every {k} epoch(s) instead of a fresh draw"
        )

    def rows(self, indices: Sequence[int], epoch: int) -> torch.Tensor:
        """The view rows of ``indices`` in ``epoch``: (epoch mod K)·N + i."""
        return torch.as_tensor(list(indices), dtype=torch.long) + (epoch % self.views) * len(self.base)

    def __getitems__(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        epoch = getattr(indices, "epoch", 0)  # a sample read outside an epoch (a shape) is view 0
        batch = self.base.__getitems__(list(indices))
        rows = self.rows(indices, epoch)
        batch["x"] = self.inputs.index_select(0, rows)
        batch[TEACHER_ROW] = rows
        return batch

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        batch = self.__getitems__([i])
        return {key: value[0] for key, value in batch.items()}

    def fingerprint(self) -> str:
        """A hash of every view (other views: other training data, for the disk cache and for resume)."""
        if self._fingerprint is None:
            digest = hashlib.sha1(self.base.fingerprint().encode())
            digest.update(f"views:{self.views}:{self.names}".encode())
            digest.update(self.inputs.contiguous().numpy().tobytes())
            self._fingerprint = digest.hexdigest()[:16]
        return self._fingerprint


def _drawn(draw: AugmentedDataset, base: ArrayDataset, view: int) -> torch.Tensor:
    """View ``view`` of every example: each one's per-example transforms seeded from (seed, view, example)."""
    chunks = []
    for start in range(0, len(base), CHUNK):
        index = torch.arange(start, min(start + CHUNK, len(base)))
        chunks.append(draw.transformed(base.x.index_select(0, index), index, view))
    return torch.cat(chunks)
