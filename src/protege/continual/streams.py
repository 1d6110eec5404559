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

from dataclasses import dataclass

import torch

from protege.continual.config import ContinualConfig
from protege.data.dataset import ArrayDataset, DataBundle
from protege.data.tagged import TaggedDataset, join

__all__ = ["Experience", "Stream", "TaggedDataset", "build_stream", "join"]
from protege.errors import ConfigError, DataError


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
