"""Multi-label classification: one logit per label, targets 0/1 per label; a label is predicted when its
probability passes 0.5 (its logit passes 0). Micro-F1 pools every label's counts, macro-F1 averages the
labels' F1 (0 for a label never present nor predicted, as torchmetrics), mAP averages the labels'
average precision over the ranking of their probabilities."""

from __future__ import annotations

import torch

from protege.metrics.base import Metric, register


def _counts(outputs: torch.Tensor, target: torch.Tensor, labeled: torch.Tensor) -> torch.Tensor:
    """Per label: true positives, false positives, false negatives (3 × labels values)."""
    predicted = (outputs > 0)[labeled]
    actual = target[labeled] > 0.5
    tp = (predicted & actual).sum(0)
    fp = (predicted & ~actual).sum(0)
    fn = (~predicted & actual).sum(0)
    return torch.cat([tp, fp, fn]).float()


def _f1(tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor) -> torch.Tensor:
    denominator = 2 * tp + fp + fn
    return torch.where(denominator > 0, 2 * tp / denominator.clamp_min(1), torch.zeros_like(tp))


def _micro(stats: torch.Tensor) -> float:
    tp, fp, fn = stats.reshape(3, -1).sum(1)
    return float(_f1(tp, fp, fn))


def _macro(stats: torch.Tensor) -> float:
    tp, fp, fn = stats.reshape(3, -1)
    return float(_f1(tp, fp, fn).mean())


def _full(value):
    def compute(outputs: torch.Tensor, target: torch.Tensor) -> float:
        return value(_counts(outputs, target, torch.ones(len(outputs), dtype=torch.bool, device=outputs.device)))

    return compute


def _map(outputs: torch.Tensor, target: torch.Tensor) -> float:
    from torchmetrics.functional.classification import multilabel_average_precision

    labels = outputs.shape[-1]
    return multilabel_average_precision(outputs.float().sigmoid(), target.long(), labels, average="macro").item()


MICRO_F1 = register(Metric("micro_f1", "multilabel", True, _full(_micro), _counts, _micro))
MACRO_F1 = register(Metric("macro_f1", "multilabel", True, _full(_macro), _counts, _macro))
MAP = register(Metric("map", "multilabel", True, _map))
