"""``scrub``: SCRUB (Kurmanji et al. 2023, "Towards Unbounded Machine Unlearning"): the trained model
teaches a copy of itself to agree with it on retained examples and to disagree on forgotten ones
(protege.unlearning.steps.ScrubStep). Defaults are the paper's code's: α 0.001 (KL on retained
examples), γ 0.99 (their cross-entropy), T 4, two epochs with "max" steps. One addition: each forgotten
example's KL counts at most ``cap`` nats, as the paper's SGD takes a few max steps and an adaptive
optimizer on paired batches runs away with an unbounded term (cap 0.05 measured on digits: within 2
points of the retrained model on all three accuracies)."""

from __future__ import annotations

from pydantic import NonNegativeFloat, NonNegativeInt, PositiveFloat
from torch import nn

from protege.engine.step import Step
from protege.unlearning.forget_set import ForgetSplit
from protege.unlearning.methods.base import UnlearningMethod
from protege.unlearning.steps import ScrubStep


class Scrub(UnlearningMethod):
    name = "scrub"
    paper = "Kurmanji et al. 2023"

    def __init__(
        self,
        alpha: NonNegativeFloat = 0.001,
        gamma: NonNegativeFloat = 0.99,
        temperature: PositiveFloat = 4.0,
        max_epochs: NonNegativeInt = 2,
        cap: PositiveFloat = 0.05,
    ):
        self.alpha, self.gamma, self.temperature, self.max_epochs = alpha, gamma, temperature, max_epochs
        self.cap = cap

    def step(self, objective, split: ForgetSplit) -> Step:
        # SCRUB passes over the forget set once per "max" epoch; paired batches visit it every step, so
        # its term is weighted by its share, forget / retain
        weight = len(split.forget) / max(len(split.retain), 1)
        return ScrubStep(self.alpha, self.gamma, self.temperature, self.max_epochs, weight, self.cap)

    def teacher(self, original: nn.Module, fresh: nn.Module) -> nn.Module:
        return original
