"""``lwf``: Learning without Forgetting (Li & Hoiem 2017, "Learning without Forgetting"): no data is
kept; on each new experience the model is also distilled from its own copy after the previous one, on
the outputs that copy had (Hinton's soft targets at temperature T, weight ``alpha``). The previous model
is a teacher like any other, so its logits come from the teacher cache."""

from __future__ import annotations

from pydantic import NonNegativeFloat, PositiveFloat

from protege.continual.steps import ContinualStep, LwFStep
from protege.continual.strategies.base import ContinualStrategy
from protege.continual.streams import Experience
from protege.engine.step import Step
from protege.objectives import Objective


class LwF(ContinualStrategy):
    name = "lwf"
    previous_as_teacher = True

    def __init__(self, alpha: NonNegativeFloat = 1.0, temperature: PositiveFloat = 2.0):
        super().__init__()
        self.alpha, self.temperature = alpha, temperature

    def step(self, objective: Objective, experience: Experience) -> Step:
        if experience.number == 1:
            return ContinualStep(objective, self.task_classes(experience))
        old = len(self.ready_stream.known_classes(experience.number - 1))
        return LwFStep(objective, old, self.alpha, self.temperature, self.task_classes(experience))
