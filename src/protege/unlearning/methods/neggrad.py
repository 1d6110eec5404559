"""``neggrad``: NegGrad+ (Kurmanji et al. 2023): gradient descent on the retained examples and ascent on
the forgotten ones, β·CE(retain) − (1 − β)·CE(forget) (protege.unlearning.steps.NegGradStep)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, PositiveFloat

from protege.engine.step import Step
from protege.unlearning.forget_set import ForgetSplit
from protege.unlearning.methods.base import UnlearningMethod
from protege.unlearning.steps import NegGradStep


class NegGrad(UnlearningMethod):
    name = "neggrad"
    paper = "Kurmanji et al. 2023"

    def __init__(self, beta: Annotated[float, Field(gt=0, lt=1)] = 0.9, cap: PositiveFloat = 5.0):
        self.beta, self.cap = beta, cap

    def step(self, objective, split: ForgetSplit) -> Step:
        return NegGradStep(self.beta, self.cap)
