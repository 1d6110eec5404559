"""Transformer-layer distillation as in TinyBERT (Jiao et al. 2020): each student layer learns the
hidden states and attention probabilities of a mapped teacher layer.

Layers are named by path templates with ``{}`` for the layer number (Hugging Face BERT-style encoders:
``encoder.layer.{}`` and ``encoder.layer.{}.attention.self:1``, the attention module's second
output, which eager attention fills with the probabilities). The layer map is given, or uniform:
student layer m (of M) learns from teacher layer m·N/M (of N), as in the paper.
"""

from __future__ import annotations

import torch
from pydantic import NonNegativeFloat, PositiveInt
from torch import nn
from torch.nn import functional as F

from protege.errors import ConfigError
from protege.models.taps import layer_output
from protege.objectives.base import Objective, StepOutputs, hard_label_loss


def uniform_layer_map(student_depth: int, teacher_depth: int) -> list[tuple[int, int]]:
    """TinyBERT's g(m) = m·N/M, 1-based; returned 0-based as (student layer, teacher layer) pairs."""
    if student_depth < 1 or teacher_depth < student_depth:
        raise ValueError(
            f"a uniform map needs 1 <= student_depth <= teacher_depth (got {student_depth}, {teacher_depth})"
        )
    return [(m - 1, m * teacher_depth // student_depth - 1) for m in range(1, student_depth + 1)]


def attention_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Eq. 7: the mean squared error between attention matrices (batch, heads, query, key); when the
    two models have different numbers of heads, each is averaged over its heads first."""
    student, teacher = student.float(), teacher.float()
    if student.shape[1] != teacher.shape[1]:
        student, teacher = student.mean(1), teacher.mean(1)
    return F.mse_loss(student, teacher)


class TinyBERT(Objective):
    """Σ over mapped layers of ``hidden_weight``·MSE(h_s W, h_t) (eq. 8) + ``attention_weight``·MSE(A_s, A_t)
    (eq. 7), + ``ce_weight``·CE. W, one linear map per student layer, is sized by a dry run and trains
    with the student (not exported). Combine with ``kd`` for the prediction layer (eq. 11)."""

    needs_teacher = True

    def __init__(
        self,
        layer_map: list[list[int]] | None = None,
        student_depth: PositiveInt | None = None,
        teacher_depth: PositiveInt | None = None,
        hidden_template: str = "encoder.layer.{}",
        attention_template: str | None = "encoder.layer.{}.attention.self:1",
        hidden_weight: NonNegativeFloat = 1.0,
        attention_weight: NonNegativeFloat = 1.0,
        ce_weight: NonNegativeFloat = 0.0,
    ):
        super().__init__()
        if layer_map is None:
            if student_depth is None or teacher_depth is None:
                raise ValueError("give layer_map ([[student, teacher], ...]) or student_depth and teacher_depth")
            pairs = uniform_layer_map(student_depth, teacher_depth)
        else:
            if not layer_map or any(len(pair) != 2 for pair in layer_map):
                raise ValueError("layer_map must be a list of [student_layer, teacher_layer] pairs")
            pairs = [(int(s), int(t)) for s, t in layer_map]
        for template in (hidden_template, attention_template):
            if template is not None and "{}" not in template:
                raise ValueError(f"layer template {template!r} needs '{{}}' where the layer number goes")
        self.hidden = [(hidden_template.format(s), hidden_template.format(t)) for s, t in pairs]
        self.attention = (
            [(attention_template.format(s), attention_template.format(t)) for s, t in pairs]
            if attention_template is not None and attention_weight
            else []
        )
        self.student_layers = tuple(dict.fromkeys(p for pair in (*self.hidden, *self.attention) for p in pair[:1]))
        self.teacher_layers = tuple(dict.fromkeys(p for pair in (*self.hidden, *self.attention) for p in pair[1:]))
        self.hidden_weight, self.attention_weight, self.ce_weight = hidden_weight, attention_weight, ce_weight
        self.projections = nn.ModuleList()

    def setup(self, student: nn.Module, teacher: nn.Module | None, sample: torch.Tensor, num_examples: int) -> None:
        """One linear map per mapped layer, from the student's hidden width to the teacher's."""
        assert teacher is not None, "tinybert always has a teacher"
        for s_path, t_path in self.hidden:
            s, t = layer_output(student, s_path, sample), layer_output(teacher, t_path, sample)
            if s.dim() != 3 or t.dim() != 3:
                raise ConfigError(
                    f"tinybert: {s_path!r} and {t_path!r} must give hidden states (batch, tokens, width); "
                    f"got {tuple(s.shape)} and {tuple(t.shape)}"
                )
            self.projections.append(nn.Linear(s.shape[-1], t.shape[-1]))

    def forward(self, out: StepOutputs) -> dict[str, torch.Tensor]:
        hidden = out.logits.new_zeros((), dtype=torch.float32)
        for projection, (s_path, t_path) in zip(self.projections, self.hidden, strict=True):
            hidden = hidden + F.mse_loss(projection(out.features[s_path].float()), out.teacher_features[t_path].float())
        terms = {"hidden": self.hidden_weight * hidden}
        if self.attention:
            attention = sum(attention_loss(out.features[s], out.teacher_features[t]) for s, t in self.attention)
            terms["attention"] = self.attention_weight * attention
        if self.ce_weight:
            terms["ce"] = self.ce_weight * hard_label_loss(out.logits, out.target, labeled=out.labeled)
        return terms
