"""The contract of an approximate unlearning method: starting from the trained model, what it trains on
(the retain set, the forget set, both paired), with which step and which teacher."""

from __future__ import annotations

import abc
from typing import ClassVar

from torch import nn

from protege.data.dataset import ArrayDataset
from protege.data.paired import PairedSet
from protege.data.tagged import TaggedDataset
from protege.engine.step import Step
from protege.unlearning.forget_set import ForgetSplit
from protege.unlearning.steps import FORGET


class UnlearningMethod(abc.ABC):
    """A method by name; ``teacher`` returns the model it distils from (None: none)."""

    name: ClassVar[str]
    paper: ClassVar[str]
    trains_on: ClassVar[str] = "retained and forgotten examples, paired in each batch"

    def train_set(self, split: ForgetSplit, seed: int) -> ArrayDataset:
        """What the method trains on: by default the retain set paired with the forget set."""
        return paired(split)

    @abc.abstractmethod
    def step(self, objective, split: ForgetSplit) -> Step:
        """The training step (the recipe's objective where the method trains with it)."""

    def teacher(self, original: nn.Module, fresh: nn.Module) -> nn.Module | None:
        return None


def tagged(dataset: ArrayDataset) -> TaggedDataset:
    return TaggedDataset(dataset.x, dataset.y, dataset.labeled)


def paired(split: ForgetSplit) -> PairedSet:
    """Each training batch: retained examples and as many forgotten ones (flagged ``forget``)."""
    return PairedSet(tagged(split.retain), tagged(split.forget), flag=FORGET)
