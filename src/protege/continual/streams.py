"""A stream of experiences cut from one data set, in the three scenarios of van de Ven, Tuytelaars &
Tolias (2022, "Three types of incremental learning"):

- class-incremental: the classes are split into experiences (in the data's order, a seeded order or a
  given one); at test time the model must tell every class it has seen apart;
- task-incremental: the same split, and the experience (task) of each test example is known, so each
  experience's classes form their own head;
- domain-incremental: every experience has every class, under a changed input distribution (features
  permuted, images rotated, or noise added), as Permuted and Rotated MNIST do.

Class ids are renumbered in arrival order, so a growing head's outputs follow the stream. Each
experience keeps its own train / validation / test split.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from protege.continual.config import ContinualConfig
from protege.data.dataset import ArrayDataset, DataBundle
from protege.errors import ConfigError, DataError


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


@dataclass
class Experience:
    """One experience: its number (from 1), the classes it brings and its three splits."""

    number: int
    classes: tuple[int, ...]
    train: TaggedDataset
    val: TaggedDataset | None
    test: TaggedDataset

    @property
    def name(self) -> str:
        return f"exp{self.number}"


@dataclass
class Stream:
    """The experiences in order, the class names in output order, and the scenario."""

    scenario: str
    experiences: list[Experience]
    class_names: list[str]
    data: DataBundle
    """The data with its classes renumbered in arrival order (every split, every experience's source)."""
    domains: list[str] | None = None
    """A domain stream read from a group column: each experience's domain."""

    @property
    def grows(self) -> bool:
        """Class and task incremental streams bring new classes, so the head grows."""
        return self.scenario != "domain_incremental"

    @property
    def task_aware(self) -> bool:
        return self.scenario == "task_incremental"

    def known_classes(self, number: int) -> list[str]:
        """The classes a model knows after experience ``number`` (every class in a domain stream)."""
        if not self.grows:
            return list(self.class_names)
        count = sum(len(e.classes) for e in self.experiences[:number])
        return self.class_names[:count]

    def seen(self, number: int) -> list[Experience]:
        return self.experiences[:number]

    def task_classes(self, outputs: int) -> torch.Tensor:
        """A (experiences × outputs) mask: which outputs belong to each experience's head."""
        mask = torch.zeros(len(self.experiences), outputs, dtype=torch.bool)
        for e in self.experiences:
            for c in e.classes:
                if c < outputs:
                    mask[e.number - 1, c] = True
        return mask


def build_stream(data: DataBundle, config: ContinualConfig, seed: int) -> Stream:
    """The recipe's data cut into ``config.experiences`` experiences of ``config.scenario``."""
    if data.task != "classification":
        raise ConfigError(f"continual learning needs a classification task; data.task is {data.task!r}")
    if config.scenario == "domain_incremental":
        return _domain_stream(data, config, seed)
    return _class_stream(data, config, seed)


def class_order(data: DataBundle, config: ContinualConfig, seed: int) -> list[int]:
    """The original class ids in the order they arrive."""
    names = data.class_names
    if config.class_order == "natural":
        return list(range(len(names)))
    if config.class_order == "seeded":
        return torch.randperm(len(names), generator=torch.Generator().manual_seed(seed)).tolist()
    given = [str(c) for c in config.class_order]
    unknown = [c for c in given if c not in names]
    if unknown:
        raise ConfigError(
            f"continual.class_order names class {unknown[0]!r}, which the data does not have; its classes: "
            f"{', '.join(names[:12])}{' ...' if len(names) > 12 else ''}"
        )
    missing = [c for c in names if c not in given]
    if missing or len(given) != len(set(given)):
        what = f"leaves out class {missing[0]!r}" if missing else "names a class twice"
        raise ConfigError(f"continual.class_order {what}; list every class of the data once")
    return [names.index(c) for c in given]


def _renumbered(dataset: ArrayDataset, mapping: torch.Tensor) -> ArrayDataset:
    return ArrayDataset(dataset.x, mapping[dataset.y], dataset.labeled)


def _class_stream(data: DataBundle, config: ContinualConfig, seed: int) -> Stream:
    order = class_order(data, config, seed)
    if config.experiences > len(order):
        raise ConfigError(
            f"continual.experiences is {config.experiences}, more than the data's {len(order)} classes; "
            "each experience needs at least one class"
        )
    mapping = torch.empty(len(order), dtype=torch.long)
    mapping[torch.tensor(order)] = torch.arange(len(order))
    names = [data.class_names[c] for c in order]
    splits = {
        "train": _renumbered(data.train, mapping),
        "val": _renumbered(data.val, mapping) if data.val is not None else None,
        "test": _renumbered(data.test, mapping),
    }
    renumbered = DataBundle(
        splits["train"], splits["test"], splits["val"], names, data.source, data.preprocess, data.text_encoder,
        None, data.task, data.split,
    )  # fmt: skip
    groups = torch.tensor_split(torch.arange(len(order)), config.experiences)
    experiences = []
    for number, classes in enumerate(groups, start=1):
        parts = {split: _classes_of(dataset, classes, number) for split, dataset in splits.items()}
        for split in ("train", "test"):
            if len(parts[split]) == 0:
                shown = ", ".join(names[c] for c in classes.tolist())
                raise DataError(
                    f"experience {number} (classes {shown}) has no {split} examples; use fewer experiences"
                    + (" or a larger test_fraction" if split == "test" else "")
                )
        val = parts["val"] if parts["val"] is not None and len(parts["val"]) else None
        experiences.append(Experience(number, tuple(classes.tolist()), parts["train"], val, parts["test"]))
    return Stream(config.scenario, experiences, names, renumbered)


def _classes_of(dataset: ArrayDataset | None, classes: torch.Tensor, number: int) -> TaggedDataset | None:
    if dataset is None:
        return None
    idx = torch.nonzero(torch.isin(dataset.y, classes)).flatten()
    task = torch.full((len(idx),), number - 1, dtype=torch.long)
    return TaggedDataset(dataset.x[idx], dataset.y[idx], dataset.labeled[idx], {"task": task})


def _domain_stream(data: DataBundle, config: ContinualConfig, seed: int) -> Stream:
    if config.class_order != "natural":
        raise ConfigError(
            "continual.class_order is for class and task incremental streams; a domain stream has every class"
        )
    if config.shift == "column":
        return _column_stream(data, config)
    shift = DomainShift(data, config, seed)
    experiences = []
    for number in range(1, config.experiences + 1):
        parts = {
            split: shift.apply(dataset, number, salt) if dataset is not None else None
            for salt, (split, dataset) in enumerate((("train", data.train), ("val", data.val), ("test", data.test)))
        }
        classes = tuple(range(data.num_classes))
        experiences.append(Experience(number, classes, parts["train"], parts["val"], parts["test"]))
    return Stream(config.scenario, experiences, list(data.class_names), data)


def _column_stream(data: DataBundle, config: ContinualConfig) -> Stream:
    """One experience per domain the data names (its group column), in sorted order."""
    if set(data.groups) != {"train", "val", "test"} - ({"val"} if data.val is None else set()):
        raise ConfigError(
            "continual.shift column reads each example's domain from the data's group column; give the csv "
            "source options.group_column (the column naming each row's domain)"
        )
    domains = sorted(set(data.groups["train"]))
    if len(domains) != config.experiences:
        shown = ", ".join(domains[:10]) + (" ..." if len(domains) > 10 else "")
        raise ConfigError(
            f"continual.experiences is {config.experiences}, and the group column names {len(domains)} domains "
            f"({shown}); set experiences to {len(domains)}"
        )
    splits = {"train": data.train, "val": data.val, "test": data.test}
    experiences = []
    for number, domain in enumerate(domains, start=1):
        parts = {}
        for split, dataset in splits.items():
            if dataset is None:
                parts[split] = None
                continue
            idx = torch.tensor([i for i, g in enumerate(data.groups[split]) if g == domain], dtype=torch.long)
            if split != "val" and len(idx) == 0:
                raise DataError(f"domain {domain!r} (experience {number}) has no {split} examples; "
                                "use a larger test_fraction or merge it with another domain")  # fmt: skip
            task = torch.full((len(idx),), number - 1, dtype=torch.long)
            parts[split] = TaggedDataset(dataset.x[idx], dataset.y[idx], dataset.labeled[idx], {"task": task})
        val = parts["val"] if parts["val"] is not None and len(parts["val"]) else None
        classes = tuple(range(data.num_classes))
        experiences.append(Experience(number, classes, parts["train"], val, parts["test"]))
    return Stream(config.scenario, experiences, list(data.class_names), data, domains)


class DomainShift:
    """The input change of each experience: a fixed random permutation of the features (the first
    experience keeps the original order), a rotation of images by a growing angle, or Gaussian noise of
    a growing standard deviation (fixed per example, so every epoch sees the same inputs)."""

    def __init__(self, data: DataBundle, config: ContinualConfig, seed: int):
        self.kind, self.seed, self.count = config.shift, seed, config.experiences
        shape = data.input_shape
        if self.kind == "rotate" and len(shape) != 3:
            raise ConfigError(
                f"continual.shift rotate turns images, and these inputs have shape {shape}; use permute or noise"
            )
        default = 180.0 / config.experiences if self.kind == "rotate" else 1.0
        self.amount = config.shift_amount if config.shift_amount is not None else default
        self.scale = float(data.train.x.float().std()) if self.kind == "noise" else 1.0

    def apply(self, dataset: ArrayDataset, number: int, salt: int = 0) -> TaggedDataset:
        """``dataset`` as experience ``number`` sees it; ``salt`` tells splits apart (their noise differs,
        their permutation is the same)."""
        task = torch.full((len(dataset),), number - 1, dtype=torch.long)
        x = dataset.x if number == 1 else self._shifted(dataset.x, number, salt)
        return TaggedDataset(x, dataset.y, dataset.labeled, {"task": task})

    def _shifted(self, x: torch.Tensor, number: int, salt: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed * 1_000 + number)
        if self.kind == "permute":
            flat = x.reshape(len(x), -1)
            order = torch.randperm(flat.shape[1], generator=generator)
            return flat[:, order].reshape(x.shape)
        if self.kind == "rotate":
            from torchvision.transforms.v2 import functional as TF

            return TF.rotate(x, self.amount * (number - 1))
        std = self.amount * self.scale * (number - 1) / (self.count - 1)
        generator.manual_seed(self.seed * 1_000_000 + number * 10 + salt)
        noise = torch.randn(x.shape, generator=generator, dtype=torch.float32) * std
        return (x.float() + noise).to(x.dtype)
