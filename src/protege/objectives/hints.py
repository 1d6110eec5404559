"""Objectives on intermediate feature maps: FitNet hints and attention transfer.

Both name the layers by module path; the engine taps them on both models each step.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from pydantic import NonNegativeFloat, NonNegativeInt
from torch import nn
from torch.nn import functional as F

from protege.errors import ConfigError
from protege.models.taps import layer_output
from protege.objectives.base import Objective, StepOutputs, hard_label_loss


def match_spatial(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Average-pool (or upsample) a feature map to the spatial ``size`` of the other model's map."""
    if tuple(x.shape[2:]) == tuple(size):
        return x
    if all(a >= b for a, b in zip(x.shape[2:], size, strict=True)):
        return F.adaptive_avg_pool2d(x, size) if x.dim() == 4 else F.adaptive_avg_pool1d(x, size)
    return F.interpolate(x, size=tuple(size), mode="nearest")


class FitNet(Objective):
    """Romero et al. 2015, eq. 3: ½‖r(f_s) − f_t‖² (here the mean squared error) between the teacher's
    hint layer and the student's guided layer through a learned regressor r, + ``ce_weight``·CE.

    The regressor (a 1×1 convolution for maps, a linear layer for vectors) is sized from a dry-run
    forward pass of both models; it trains with the student and is not part of the exported student.
    With ``hint_epochs``, a recipe first trains on the hint loss alone for that many epochs (the paper's
    stage 1), then on the whole objective.
    """

    needs_teacher = True

    def __init__(
        self,
        student_layer: str = "features",
        teacher_layer: str = "features",
        hint_weight: NonNegativeFloat = 1.0,
        ce_weight: NonNegativeFloat = 1.0,
        hint_epochs: NonNegativeInt = 0,
    ):
        super().__init__()
        self.student_layer, self.teacher_layer = student_layer, teacher_layer
        self.student_layers, self.teacher_layers = (student_layer,), (teacher_layer,)
        self.hint_weight, self.ce_weight = hint_weight, ce_weight
        self.hint_epochs = hint_epochs
        self.adapter: nn.Module | None = None

    def options(self) -> dict:
        """The constructor arguments, to build the hint-only objective of the pre-training stage."""
        return {
            "student_layer": self.student_layer,
            "teacher_layer": self.teacher_layer,
            "hint_weight": self.hint_weight,
            "ce_weight": self.ce_weight,
        }

    @torch.no_grad()
    def setup(self, student: nn.Module, teacher: nn.Module | None, sample: torch.Tensor, num_examples: int) -> None:
        """Size the regressor from the shapes of the two tapped outputs on ``sample``."""
        assert teacher is not None, "fitnet always has a teacher"
        s, t = layer_output(student, self.student_layer, sample), layer_output(teacher, self.teacher_layer, sample)
        if s.dim() != t.dim() or s.dim() not in (2, 3, 4):
            raise ConfigError(
                f"fitnet: student layer {self.student_layer!r} gives shape {tuple(s.shape[1:])} and teacher "
                f"layer {self.teacher_layer!r} gives {tuple(t.shape[1:])}; pick layers of the same kind"
            )
        if s.dim() == 2:
            self.adapter = nn.Linear(s.shape[1], t.shape[1])
        elif s.dim() == 3:
            self.adapter = nn.Conv1d(s.shape[1], t.shape[1], 1)
        else:
            self.adapter = nn.Conv2d(s.shape[1], t.shape[1], 1)

    def forward(self, out: StepOutputs) -> dict[str, torch.Tensor]:
        assert self.adapter is not None, "the engine calls setup() before training"
        s, t = out.features[self.student_layer], out.teacher_features[self.teacher_layer]
        guided = self.adapter(s.float())
        if guided.dim() > 2:
            guided = match_spatial(guided, t.shape[2:])
        terms = {"hint": self.hint_weight * F.mse_loss(guided, t.float())}
        if self.ce_weight:
            terms["ce"] = self.ce_weight * hard_label_loss(out.logits, out.target, labeled=out.labeled)
        return terms


def attention_map(x: torch.Tensor) -> torch.Tensor:
    """Zagoruyko & Komodakis 2017, eq. 2 with p = 2: the channel mean of squared activations,
    flattened and L2-normalised per example."""
    return F.normalize(x.float().pow(2).mean(1).flatten(1), dim=1)


class AttentionTransfer(Objective):
    """β/2 · Σ_pairs mean((Q_s/‖Q_s‖ − Q_t/‖Q_t‖)²) over paired layers (eq. 3), + ``ce_weight``·CE.

    Channels may differ; spatial sizes are pooled to the smaller of the two maps.
    """

    needs_teacher = True

    def __init__(
        self,
        student_layers: list[str] | None = None,
        teacher_layers: list[str] | None = None,
        beta: NonNegativeFloat = 1000.0,
        ce_weight: NonNegativeFloat = 1.0,
    ):
        super().__init__()
        if not student_layers or not teacher_layers or len(student_layers) != len(teacher_layers):
            raise ValueError("attention needs student_layers and teacher_layers, two lists of the same length")
        self.pairs = list(zip(student_layers, teacher_layers, strict=True))
        self.student_layers, self.teacher_layers = tuple(student_layers), tuple(teacher_layers)
        self.beta, self.ce_weight = beta, ce_weight

    def forward(self, out: StepOutputs) -> dict[str, torch.Tensor]:
        total = out.logits.new_zeros(())
        for s_path, t_path in self.pairs:
            s, t = out.features[s_path], out.teacher_features[t_path]
            if s.shape[2:] != t.shape[2:]:
                smaller = min(s.shape[2:], t.shape[2:], key=lambda size: torch.Size(size).numel())
                s, t = match_spatial(s, smaller), match_spatial(t, smaller)
            total = total + (attention_map(s) - attention_map(t)).pow(2).mean()
        terms = {"attention": self.beta / 2 * total}
        if self.ce_weight:
            terms["ce"] = self.ce_weight * hard_label_loss(out.logits, out.target, labeled=out.labeled)
        return terms
