"""In-memory datasets served batch-at-a-time: one tensor slice per batch, no per-sample collation."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from protege.files import release_inherited_locks

UNLABELED = -1
"""Class id stored for transfer-set examples (only the teacher labels them); the ``labeled`` mask, not
this value, is what says an example has no label."""


class ArrayDataset(Dataset):
    """Inputs, targets and the labelled mask held as tensors; ``__getitems__`` returns a whole batch.

    Targets are class ids (integers), or real values / 0-1 labels per example (floats, one column per
    output). Each batch also carries the examples' positions (``index``), which the teacher cache uses.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, labeled: torch.Tensor | None = None) -> None:
        if len(x) != len(y):
            raise ValueError(f"{len(x)} inputs but {len(y)} targets")
        self.x = x
        self.y = y if y.is_floating_point() else y.long()
        self.labeled = labeled.bool() if labeled is not None else self._default_mask()
        if labeled is not None and not self.y.is_floating_point() and not self.labeled.all():
            # the class id of an unlabelled example is -1, whatever was given: losses skip it by that id
            self.y = torch.where(self.labeled, self.y, torch.full_like(self.y, UNLABELED))

    def _default_mask(self) -> torch.Tensor:
        if self.y.is_floating_point():
            return torch.ones(len(self.y), dtype=torch.bool)
        return self.y != UNLABELED

    @classmethod
    def unlabeled(cls, x: torch.Tensor, like: ArrayDataset | None = None) -> ArrayDataset:
        """Inputs without labels, with targets shaped like ``like``'s (placeholders the mask hides)."""
        if like is None or not like.y.is_floating_point():
            y = torch.full((len(x),), UNLABELED, dtype=torch.long)
        else:
            y = torch.zeros((len(x), *like.y.shape[1:]), dtype=like.y.dtype)
        return cls(x, y, torch.zeros(len(x), dtype=torch.bool))

    def __len__(self) -> int:
        return len(self.y)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[i], "y": self.y[i], "labeled": self.labeled[i], "index": torch.tensor(i)}

    def __getitems__(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        # index_select gathers rows about twice as fast as advanced indexing on a CPU
        return {
            "x": self.x.index_select(0, idx),
            "y": self.y.index_select(0, idx),
            "labeled": self.labeled.index_select(0, idx),
            "index": idx,
        }

    def fingerprint(self) -> str:
        """A short hash of the contents, to tell one data set from another (teacher cache, resume)."""
        digest = hashlib.sha1()
        for t in (self.x, self.y):
            digest.update(str(tuple(t.shape)).encode())
            digest.update(t.contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]


def first_inputs(dataset: Dataset, count: int) -> torch.Tensor:
    """The first ``count`` inputs of an in-memory dataset, or of one that reads its batches (streamed
    images): a sample to size parts on or to trace a model with."""
    if isinstance(dataset, ArrayDataset):
        return dataset.x[:count]
    return dataset.__getitems__(list(range(min(count, len(dataset)))))["x"]  # type: ignore[attr-defined]


def fixed_inputs(dataset: object) -> bool:
    """Whether an example's input is the same every epoch (in memory, or files read unchanged), so a
    frozen teacher's outputs for it can be cached."""
    return isinstance(dataset, ArrayDataset) or getattr(dataset, "fixed_inputs", False)


def concat(a: ArrayDataset, b: ArrayDataset) -> ArrayDataset:
    """Join two datasets with the same input shape (labelled train set + unlabeled transfer set); an
    unlabelled ``b`` gets placeholder targets shaped like ``a``'s."""
    if a.x.shape[1:] != b.x.shape[1:]:
        raise ValueError(f"input shapes differ: {tuple(a.x.shape[1:])} vs {tuple(b.x.shape[1:])}")
    if (b.y.shape[1:], b.y.dtype) != (a.y.shape[1:], a.y.dtype) and not b.labeled.any():
        b = ArrayDataset.unlabeled(b.x, like=a)
    return ArrayDataset(torch.cat([a.x, b.x.to(a.x.dtype)]), torch.cat([a.y, b.y]), torch.cat([a.labeled, b.labeled]))


class EpochBatchSampler(Sampler[list[int]]):
    """Yields index batches; the order depends only on (seed, epoch), so a resumed run sees
    exactly the batches an uninterrupted one would, and can skip the ones already done."""

    def __init__(self, size: int, batch_size: int, shuffle: bool, seed: int, drop_last: bool = False):
        self.size = size
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0
        self.skip = 0
        self.lengths: torch.Tensor | None = None
        """Each example's length (token count): set, shuffled batches hold texts of similar length
        (:func:`group_by_length`), so less of each batch is padding."""

    def start_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        self.epoch = epoch
        self.skip = skip_batches

    def __len__(self) -> int:
        full, rest = divmod(self.size, self.batch_size)
        return full if (self.drop_last or rest == 0) else full + 1

    def __iter__(self) -> Iterator[list[int]]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.size, generator=generator)
            if self.lengths is not None:
                order = group_by_length(order, self.lengths, self.batch_size, generator)
        else:
            order = torch.arange(self.size)
        for b in range(self.skip, len(self)):
            yield order[b * self.batch_size : (b + 1) * self.batch_size].tolist()


MEGABATCH = 50
"""Batches per group sorted by length (as Hugging Face Trainer's ``group_by_length`` does)."""


def group_by_length(
    order: torch.Tensor, lengths: torch.Tensor, batch_size: int, generator: torch.Generator
) -> torch.Tensor:
    """A shuffled order regrouped so each batch holds examples of similar length: the order is cut into
    groups of ``MEGABATCH`` batches, each sorted longest first, and the full batches are shuffled (the
    last, partial batch stays last); the same (order, generator) give the same batches, so resume is exact."""
    group = MEGABATCH * batch_size
    parts = [chunk[torch.argsort(lengths[chunk], descending=True, stable=True)] for chunk in order.split(group)]
    regrouped = torch.cat(parts)
    full = len(regrouped) // batch_size
    batches = regrouped[: full * batch_size].view(full, batch_size)[torch.randperm(full, generator=generator)]
    return torch.cat([batches.reshape(-1), regrouped[full * batch_size :]])


def _worker_started(_worker_id: int) -> None:
    release_inherited_locks()  # a worker must not keep the run directory locked after its run is killed


def _whole_batch(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return batch


def batch_loader(
    dataset: Dataset, batch_size: int, shuffle: bool = False, seed: int = 0, drop_last: bool = False
) -> DataLoader:
    """A DataLoader over ``dataset`` with an :class:`EpochBatchSampler` (or the one the dataset's own
    ``batch_sampler(batch_size, shuffle, seed)`` returns, which must order batches by seed and epoch alone).

    ``ArrayDataset`` is sliced once per batch; any other map-style dataset goes through the
    default collation. A dataset with ``num_workers`` (streamed images) is read by that many worker
    processes, kept for the whole run; batches still come in the sampler's order.
    """
    own = getattr(dataset, "batch_sampler", None)  # a dataset that composes its batches itself (replay)
    sampler = own(batch_size, shuffle, seed) if callable(own) else None
    sampler = sampler or EpochBatchSampler(len(dataset), batch_size, shuffle, seed, drop_last)
    fast = hasattr(dataset, "__getitems__")
    workers = getattr(dataset, "num_workers", 0)
    # A private generator: creating the iterator draws a base seed from it, which must not consume
    # the global random state (a resumed run would then see different dropout masks).
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=_whole_batch if fast else None,
        num_workers=workers,
        persistent_workers=workers > 0,
        worker_init_fn=_worker_started if workers > 0 else None,
        generator=torch.Generator().manual_seed(seed),
        pin_memory=torch.cuda.is_available(),  # page-locked batches copy to the GPU without blocking
    )


@dataclass
class DataBundle:
    """The splits of one task plus what a model needs to know about it."""

    train: ArrayDataset
    test: ArrayDataset
    val: ArrayDataset | None
    class_names: list[str]
    source: str
    preprocess: dict = field(default_factory=dict)
    text_encoder: Any = None
    """The fitted encoder of a text source (TF-IDF or a tokenizer), for transfer sets of the same kind."""
    test_groups: list[str] | None = None
    """The group of each test example (a csv ``group_column``), for per-group accuracy."""
    task: str = "classification"
    """What the targets are (protege.tasks); ``class_names`` names the outputs: classes, labels or targets."""
    split: dict = field(default_factory=dict)
    """Where the examples came from and how the splits were made (source, options, seed, fractions;
    ``test``: ``source`` when the source defines it, ``drawn`` when drawn with the seed). Saved in the
    card of every model trained on it."""
    groups: dict[str, list[str]] = field(default_factory=dict)
    """The group of each example per split (``train``, ``val``, ``test``) where the source names them: a
    continual stream's domains (``shift: column``)."""
    rows: dict[str, torch.Tensor] = field(default_factory=dict)
    """Each example's row in the source, per split: the ids a request to forget examples names
    (protege.unlearning); a source that gives its own splits numbers each split's rows from 0."""
    texts: Any = None
    """A text source's training texts, raw and in the training split's order: what the text augmentations
    of a transfer set derive new texts from (protege.data.text_augment)."""
    test_texts: Any = None
    """A text source's test texts, raw and in the test split's order: what evaluation times a model on from
    raw text to probabilities, its own encoder included (protege.evaluate.text_latency_ms)."""

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.train.input_shape

    def describe(self) -> str:
        sizes = self.sizes()
        outputs = {"classification": "class", "multilabel": "label", "regression": "target"}.get(self.task, "output")
        outputs += "" if self.num_classes == 1 else "es" if outputs == "class" else "s"
        return (
            f"{self.source}, {self.num_classes} {outputs}, inputs {self.input_shape}, "
            f"train {sizes['train']} / val {sizes['val']} / test {sizes['test']}"
        )

    def sizes(self) -> dict[str, int]:
        return {
            "train": len(self.train),
            "val": len(self.val) if self.val is not None else 0,
            "test": len(self.test),
        }
