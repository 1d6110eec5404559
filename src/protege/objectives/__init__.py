"""Objectives by name, and the weighted sum of several of them."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from protege.errors import ConfigError
from protege.objectives.base import Objective, StepOutputs, hard_label_loss
from protege.objectives.ce import CrossEntropy
from protege.objectives.crd import CRD
from protege.objectives.dist import DIST
from protege.objectives.dkd import DecoupledKD
from protege.objectives.hints import AttentionTransfer, FitNet
from protege.objectives.kd import KnowledgeDistillation, soft_target_loss
from protege.objectives.multilabel import BinaryCrossEntropy, SigmoidKD
from protege.objectives.regression import Huber, MeanSquaredError, OutputMatching
from protege.objectives.relational import ProbabilisticKT, RelationalKD
from protege.objectives.self_distill import SelfDistillation
from protege.objectives.tinybert import TinyBERT
from protege.registry import Registry

__all__ = [
    "OBJECTIVES",
    "Objective",
    "ObjectiveSum",
    "StepOutputs",
    "build_objective",
    "check_objective_options",
    "hard_label_loss",
    "soft_target_loss",
]

OBJECTIVES: Registry[type[Objective]] = Registry("objective")
OBJECTIVES.register("ce")(CrossEntropy)
OBJECTIVES.register("kd")(KnowledgeDistillation)
OBJECTIVES.register("dkd")(DecoupledKD)
OBJECTIVES.register("dist")(DIST)
OBJECTIVES.register("rkd")(RelationalKD)
OBJECTIVES.register("pkt")(ProbabilisticKT)
OBJECTIVES.register("fitnet")(FitNet)
OBJECTIVES.register("attention")(AttentionTransfer)
OBJECTIVES.register("crd")(CRD)
OBJECTIVES.register("self_distill")(SelfDistillation)
OBJECTIVES.register("tinybert")(TinyBERT)
OBJECTIVES.register("bce")(BinaryCrossEntropy)
OBJECTIVES.register("sigmoid_kd")(SigmoidKD)
OBJECTIVES.register("mse")(MeanSquaredError)
OBJECTIVES.register("huber")(Huber)
OBJECTIVES.register("match")(OutputMatching)


class ObjectiveSum(Objective):
    """Several objectives, each scaled by its weight; term names get the objective's name when two clash."""

    def __init__(self, parts: Sequence[tuple[str, Objective, float]]):
        super().__init__()
        self.names = [name for name, _, _ in parts]
        self.parts = nn.ModuleList([objective for _, objective, _ in parts])
        self.weights = [weight for _, _, weight in parts]
        self.needs_teacher = any(o.needs_teacher for o in self.parts)  # type: ignore[misc]
        self.student_layers = tuple(dict.fromkeys(p for o in self.parts for p in o.student_layers))
        self.teacher_layers = tuple(dict.fromkeys(p for o in self.parts for p in o.teacher_layers))

    def setup(self, student: nn.Module, teacher: nn.Module | None, sample: torch.Tensor, num_examples: int) -> None:
        for objective in self.parts:
            objective.setup(student, teacher, sample, num_examples)

    @property
    def needs_setup(self) -> bool:
        return any(objective.needs_setup for objective in self.parts)

    def forward(self, out: StepOutputs) -> dict[str, torch.Tensor]:
        if len(self.parts) == 1 and self.weights[0] == 1.0:
            return self.parts[0](out)
        terms: dict[str, torch.Tensor] = {}
        for name, objective, weight in zip(self.names, self.parts, self.weights, strict=True):
            for term, value in objective(out).items():
                key = term if term not in terms else f"{name}.{term}"
                terms[key] = weight * value
        return terms


def check_objective_options(name: str, options: dict) -> dict:
    """Fail early on an unknown objective, an unknown option (with a suggestion), a wrong type or a value
    out of the range its constructor declares; return the options as validated."""
    return OBJECTIVES.check_options(name, options, also_valid=["weight"])


def build_objective(specs: Sequence[tuple[str, dict, float]]) -> ObjectiveSum:
    """Build the weighted sum of ``(name, options, weight)`` objectives."""
    parts = []
    for name, options, weight in specs:
        options = check_objective_options(name, options)
        try:
            parts.append((name, OBJECTIVES.get(name)(**options), weight))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"objective {name!r}: {exc}") from None
    return ObjectiveSum(parts)
