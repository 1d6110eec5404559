"""The ``robust:`` block of a recipe: the attack that training runs (its norm, budget, steps), the range
the raw inputs live in, the method each kind of stage trains with, and the attack that measures robust
accuracy in the report. Budgets are in the raw input units (before ``data.standardize``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from protege.named import NamedOptions

NORMS = ("linf", "l2")


class RobustMethodConfig(NamedOptions):
    """How a stage trains under attack: ``plain``, ``pgd``, ``trades``, ``ard`` or ``rslad``, and its options."""


def _method(name: str) -> Any:
    return Field(default_factory=lambda: RobustMethodConfig(name=name))


class RobustEvaluateConfig(BaseModel):
    """The attack behind ``robust_accuracy`` in the report: PGD with its own steps and restarts, at the
    training budget unless given."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)
    steps: int = Field(20, ge=1, le=10_000, description="PGD iterations per restart")
    restarts: int = Field(1, ge=1, le=1000, description="random restarts; an example is robust if it survives all")
    epsilon: float | None = Field(None, gt=0, description="budget in raw input units (default: robust.epsilon)")
    norm: Literal["linf", "l2"] | None = Field(None, description="default: robust.norm")
    step_size: float | None = Field(None, gt=0, description="default: 2.5 · epsilon / steps")
    random_start: bool = Field(True, description="start each restart at a random point of the ball")


class RobustConfig(BaseModel):
    """Adversarial training and robust distillation for every stage of the recipe (docs/robust.md)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)
    norm: Literal["linf", "l2"] = Field("linf", description="the attack's ball: L∞ (linf) or L2")
    epsilon: float = Field(gt=0, description="the training attack's budget, in raw input units")
    steps: int = Field(10, ge=1, le=10_000, description="PGD iterations of the training attack")
    step_size: float | None = Field(None, gt=0, description="default: 2.5 · epsilon / steps (Madry et al.)")
    random_start: bool = Field(True, description="start the training attack at a random point of the ball")
    input_range: tuple[float, float] | Literal["data"] = Field(
        "data",
        description="[low, high]: the values a raw input may take (attacks clip to it); data: the smallest "
        "and largest raw value of the data's splits",
    )
    teacher: RobustMethodConfig = _method("pgd")
    baseline: RobustMethodConfig = _method("pgd")
    student: RobustMethodConfig = _method("rslad")
    evaluate: RobustEvaluateConfig = Field(default_factory=RobustEvaluateConfig)

    @field_validator("teacher", "baseline", "student", mode="before")
    @classmethod
    def _name_alone(cls, value: Any) -> Any:
        """A method may be given by its name alone: ``student: ard`` or ``{name: ard, temperature: 10}``."""
        return {"name": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _ordered_range(self) -> RobustConfig:
        if self.input_range != "data":
            low, high = self.input_range
            if not low < high:
                raise ValueError(f"input_range [{low:g}, {high:g}] must go from a low value to a higher one")
        return self
