"""``scrub``: SCRUB (Kurmanji et al. 2023, "Towards Unbounded Machine Unlearning"): the trained model
teaches a copy of itself to agree with it on retained examples and to disagree on forgotten ones
(protege.unlearning.steps.ScrubStep)."""

from __future__ import annotations

from pydantic import NonNegativeFloat, NonNegativeInt, PositiveFloat
from torch import nn

from protege.engine.step import Step
from protege.unlearning.methods.base import UnlearningMethod
from protege.unlearning.steps import ScrubStep


class Scrub(UnlearningMethod):
    name = "scrub"
    paper = "Kurmanji et al. 2023"

    def __init__(
        self,
        alpha: NonNegativeFloat = 1.0,
        gamma: NonNegativeFloat = 1.0,
        temperature: PositiveFloat = 4.0,
        max_epochs: NonNegativeInt = 2,
    ):
        self.alpha, self.gamma, self.temperature, self.max_epochs = alpha, gamma, temperature, max_epochs

    def step(self, objective) -> Step:
        return ScrubStep(self.alpha, self.gamma, self.temperature, self.max_epochs)

    def teacher(self, original: nn.Module, fresh: nn.Module) -> nn.Module:
        return original
