"""Deepest-to-shallow self-distillation ("Be Your Own Teacher", Zhang et al. 2019).

Auxiliary classifiers on shallow layers of the student learn from the labels, from the student's own
final output (softened) and from its deepest features. No separate teacher is needed, and the
auxiliary heads are training aids only: they live in the objective, not in the exported model.
"""

from __future__ import annotations

import torch
from pydantic import NonNegativeFloat, PositiveFloat
from torch import nn

from protege.errors import ConfigError
from protege.models.taps import layer_output
from protege.objectives.base import Objective, StepOutputs, hard_label_loss
from protege.objectives.kd import soft_target_loss
from protege.options import Share


def _pooled(x: torch.Tensor) -> torch.Tensor:
    """One vector per example: feature maps are averaged over their spatial positions."""
    x = x.float()
    return x.mean(dim=tuple(range(2, x.dim()))) if x.dim() > 2 else x


class AuxiliaryHead(nn.Module):
    """Pool, then a bottleneck to the width of the deepest features (for the feature hint), then a classifier."""

    def __init__(self, channels: int, width: int, num_classes: int):
        super().__init__()
        self.bottleneck = nn.Sequential(nn.Linear(channels, width), nn.ReLU())
        self.classifier = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.bottleneck(_pooled(x))
        return features, self.classifier(features)


class SelfDistillation(Objective):
    """Zhang et al. 2019, eq. 1-3: CE on the final output, plus for each shallow classifier i
    (1 − α)·CE(q_i, y) + α·T²·KL(q_C^T ‖ q_i^T) + λ·‖F_i − F_C‖²,
    where q_C and F_C (the deepest output and features) act as the teacher and get no gradient from
    these terms. T² is Hinton's scale, so gradients keep their size across temperatures.
    """

    def __init__(
        self,
        layers: list[str] | None = None,
        deep_layer: str = "features",
        temperature: PositiveFloat = 3.0,
        alpha: Share = 0.3,
        feature_weight: NonNegativeFloat = 0.03,
    ):
        super().__init__()
        if not layers:
            raise ValueError("self_distill needs layers: the shallow module paths that get auxiliary classifiers")
        self.layers, self.deep_layer = list(layers), deep_layer
        self.student_layers = (*self.layers, deep_layer)
        self.temperature, self.alpha, self.feature_weight = temperature, alpha, feature_weight
        self.heads = nn.ModuleDict()

    def setup(self, student: nn.Module, teacher: nn.Module | None, sample: torch.Tensor, num_examples: int) -> None:
        """One auxiliary head per shallow layer, sized from a dry run of the student."""
        deep = layer_output(student, self.deep_layer, sample)
        if deep.dim() != 2:
            raise ConfigError(
                f"self_distill: deep_layer {self.deep_layer!r} gives shape {tuple(deep.shape[1:])}; "
                "it must be a vector per example (the penultimate embedding, 'features' on builtin models)"
            )
        with torch.no_grad():
            was_training = student.training
            student.eval()
            num_classes = student(sample[:1].to(next(student.parameters()).device)).shape[-1]
            student.train(was_training)
        for path in self.layers:
            channels = layer_output(student, path, sample).shape[1]
            self.heads[_key(path)] = AuxiliaryHead(channels, deep.shape[1], num_classes)

    def forward(self, out: StepOutputs) -> dict[str, torch.Tensor]:
        deep_features = _pooled(out.features[self.deep_layer]).detach()
        deep_logits = out.logits.detach().float()
        ce = hard_label_loss(out.logits, out.target, labeled=out.labeled)
        soft = hint = torch.zeros((), device=ce.device)
        for path in self.layers:
            features, logits = self.heads[_key(path)](out.features[path])
            ce = ce + (1 - self.alpha) * hard_label_loss(logits, out.target, labeled=out.labeled)
            soft = soft + self.alpha * soft_target_loss(logits, deep_logits, self.temperature)
            hint = hint + self.feature_weight * (features - deep_features).pow(2).sum(1).mean()
        return {"ce": ce, "soft": soft, "hint": hint}


def _key(path: str) -> str:
    """Module paths contain dots, which ModuleDict keys may not."""
    return path.replace(".", "__")
