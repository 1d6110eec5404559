"""The two domains of an adaptation run: the labelled source (the recipe's data) and the target, either
another data source (its inputs must have the source's shape and its classes must be the source's) or
the recipe's own data under a fixed shift (protege.continual.streams' rotation, noise or permutation),
for which a seeded share of the training examples moves to the target, so the two domains never share
an example. The target's training split is unlabelled (its labels are dropped: class id −1); its
validation and test splits keep their labels, for selection (``select: target_val``) and evaluation."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from protege.adaptation.config import AdaptationConfig, TargetConfig
from protege.adaptation.steps import TARGET
from protege.continual.config import ContinualConfig
from protege.continual.streams import DomainShift
from protege.data.build import load_data
from protege.data.dataset import UNLABELED, ArrayDataset, DataBundle
from protege.data.paired import PairedSet
from protege.data.streamed import refuse_streamed
from protege.data.tagged import TaggedDataset
from protege.errors import ConfigError, DataError

DEFAULT_AMOUNT = {"rotate": 30.0, "noise": 1.0, "permute": 1.0}


@dataclass
class Domains:
    """The source's training examples and the target's three splits."""

    source_train: ArrayDataset
    target_train: ArrayDataset
    """Unlabelled: every class id is −1 and the labelled mask is all false."""
    target_val: ArrayDataset | None
    target_test: ArrayDataset
    how: str

    def paired(self) -> PairedSet:
        """Training batches of source examples paired with as many target ones (flag ``target``)."""
        return PairedSet(_tagged(self.source_train), _tagged(self.target_train), flag=TARGET)

    def describe(self) -> dict:
        return {
            "target": self.how,
            "sizes": {
                "source_train": len(self.source_train),
                "target_train": len(self.target_train),
                "target_val": len(self.target_val) if self.target_val is not None else 0,
                "target_test": len(self.target_test),
            },
        }


def build_domains(data: DataBundle, config: AdaptationConfig, seed: int) -> Domains:
    """The recipe's data as the source and the block's target, checked against each other in one line."""
    if not data.train.x.is_floating_point():
        raise DataError(
            f"{data.source}: the inputs are token ids; domain adaptation here aligns numeric features (images, "
            "signals, tables): use numeric inputs"
        )
    target = config.target
    if target.shift is not None:
        return _shifted(data, target, seed)
    return _other_source(data, target, seed)


def unlabelled(dataset: ArrayDataset) -> ArrayDataset:
    """``dataset`` with its labels dropped."""
    return ArrayDataset(dataset.x, torch.full_like(dataset.y, UNLABELED), torch.zeros(len(dataset), dtype=torch.bool))


def _tagged(dataset: ArrayDataset) -> TaggedDataset:
    return TaggedDataset(dataset.x, dataset.y, dataset.labeled)


def _shifted(data: DataBundle, target: TargetConfig, seed: int) -> Domains:
    kind = target.shift
    assert kind is not None
    shape = data.input_shape
    if kind == "rotate" and len(shape) != 3:
        raise ConfigError(
            f"adaptation.target.shift rotate turns images, and these inputs have shape {shape}; use noise or permute"
        )
    amount = target.amount if target.amount is not None else DEFAULT_AMOUNT[kind]
    stream = ContinualConfig(scenario="domain_incremental", experiences=2, shift=kind, shift_amount=amount)
    shift = DomainShift(data, stream, seed)
    order = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(seed + 7_919))
    cut = round(target.share * len(order))
    if cut < 1 or cut >= len(order):
        raise DataError(f"adaptation.target.share {target.share:g} of {len(order)} training examples leaves one "
                        "domain empty; use a share between them")  # fmt: skip
    target_part, source_part = order[:cut].sort().values, order[cut:].sort().values

    def moved(dataset: ArrayDataset, salt: int) -> ArrayDataset:
        shifted = shift.apply(dataset, 2, salt)
        return ArrayDataset(shifted.x, dataset.y, dataset.labeled)

    train = data.train
    how = f"the recipe's data, {_shift_words(kind, amount)}; {cut} of its {len(order)} training examples"
    return Domains(
        source_train=ArrayDataset(train.x[source_part], train.y[source_part], train.labeled[source_part]),
        target_train=unlabelled(moved(ArrayDataset(train.x[target_part], train.y[target_part]), 0)),
        target_val=moved(data.val, 1) if data.val is not None else None,
        target_test=moved(data.test, 2),
        how=how,
    )


def _shift_words(kind: str, amount: float) -> str:
    if kind == "rotate":
        return f"rotated by {amount:g}°"
    if kind == "noise":
        return f"with Gaussian noise of {amount:g} × the inputs' standard deviation"
    return "with its features in a fixed random order"


def _other_source(data: DataBundle, target: TargetConfig, seed: int) -> Domains:
    assert target.source is not None
    other = load_data(
        target.source, target.options, val_fraction=target.val_fraction, test_fraction=target.test_fraction, seed=seed
    )
    if other.input_shape != data.input_shape:
        raise DataError(
            f"adaptation.target {target.source}: its inputs have shape {other.input_shape}, the source's "
            f"({data.source}) {data.input_shape}; the same model reads both, so give a target whose inputs have "
            "the source's shape"
        )
    refuse_streamed(other.train, "adaptation.target")
    if not other.train.x.is_floating_point():
        raise DataError(f"adaptation.target {target.source}: the inputs are token ids; give numeric inputs")
    unknown = [name for name in other.class_names if name not in data.class_names]
    if unknown:
        raise DataError(
            f"adaptation.target {target.source}: class {unknown[0]!r} is not one of the source's classes "
            f"({', '.join(data.class_names[:12])}); the model can only predict the source's classes"
        )
    mapping = torch.tensor([data.class_names.index(name) for name in other.class_names], dtype=torch.long)
    standardize = data.preprocess.get("standardize")

    def as_source(dataset: ArrayDataset) -> ArrayDataset:
        """Class ids in the source's numbering, inputs standardised with the source's statistics."""
        x = dataset.x.float()
        if standardize is not None:
            mean = torch.tensor(standardize["mean"], dtype=torch.float32).reshape(data.input_shape)
            std = torch.tensor(standardize["std"], dtype=torch.float32).reshape(data.input_shape)
            x = (x - mean) / std
        return ArrayDataset(x, mapping[dataset.y], dataset.labeled)

    return Domains(
        source_train=data.train,
        target_train=unlabelled(as_source(other.train)),
        target_val=as_source(other.val) if other.val is not None else None,
        target_test=as_source(other.test),
        how=f"{target.source} ({len(other.train)} unlabelled training examples)",
    )
