"""``finetune``: keep training the model on the retained examples only, so that what it knew of the
forgotten ones fades (the "fine-tune" baseline of Golatkar et al. 2020 and of the NeurIPS 2023 unlearning
challenge)."""

from __future__ import annotations

from protege.data.dataset import ArrayDataset
from protege.engine.step import Step, SupervisedStep
from protege.unlearning.forget_set import ForgetSplit
from protege.unlearning.methods.base import UnlearningMethod


class Finetune(UnlearningMethod):
    name = "finetune"
    trains_on = "the retained examples"
    paper = "Golatkar et al. 2020"

    def train_set(self, split: ForgetSplit, seed: int) -> ArrayDataset:
        return split.retain

    def step(self, objective, split: ForgetSplit) -> Step:
        return SupervisedStep(objective)
