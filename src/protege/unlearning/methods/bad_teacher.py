"""``bad_teacher``: "Can Bad Teaching Induce Forgetting?" (Chundawat et al. 2023): the student distils the
trained model on retained examples and a randomly initialised copy on forgotten ones
(protege.unlearning.steps.BadTeacherStep)."""

from __future__ import annotations

from pydantic import PositiveFloat
from torch import nn

from protege.engine.step import Step
from protege.unlearning.forget_set import ForgetSplit
from protege.unlearning.methods.base import UnlearningMethod
from protege.unlearning.steps import BadTeacherStep, TwoTeachers


class BadTeacher(UnlearningMethod):
    name = "bad_teacher"
    paper = "Chundawat et al. 2023"

    def __init__(self, temperature: PositiveFloat = 1.0):
        self.temperature = temperature

    def step(self, objective, split: ForgetSplit) -> Step:
        return BadTeacherStep(self.temperature)

    def teacher(self, original: nn.Module, fresh: nn.Module) -> nn.Module:
        return TwoTeachers(original, fresh)
