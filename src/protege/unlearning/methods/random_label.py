"""``random_label``: fine-tune on the retained examples and on the forgotten ones relabelled at random
with a wrong class (Graves et al. 2021, "Amnesiac Machine Learning"; the random-labels baseline of
Golatkar et al. 2020), so the model's confidence on them is unlearned."""

from __future__ import annotations

import torch

from protege.data.dataset import ArrayDataset, concat
from protege.engine.step import Step, SupervisedStep
from protege.unlearning.forget_set import ForgetSplit
from protege.unlearning.methods.base import UnlearningMethod


class RandomLabel(UnlearningMethod):
    name = "random_label"
    trains_on = "the retained examples and the forgotten ones relabelled"
    paper = "Graves et al. 2021"

    def train_set(self, split: ForgetSplit, seed: int) -> ArrayDataset:
        forget = split.forget
        classes = int(max(split.retain.y.max(), forget.y.max())) + 1
        shift = torch.randint(1, classes, (len(forget),), generator=torch.Generator().manual_seed(seed + 11))
        wrong = (forget.y + shift) % classes  # never the true class
        return concat(split.retain, ArrayDataset(forget.x, wrong, forget.labeled))

    def step(self, objective, split: ForgetSplit) -> Step:
        return SupervisedStep(objective)
