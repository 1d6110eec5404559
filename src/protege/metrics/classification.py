"""Single-label classification: the outputs are logits over the classes, the targets class ids (or, in
training, soft targets such as mixup's, read at their most probable class)."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from protege.metrics.base import Metric, register

CALIBRATION_BINS = 15
"""Equal-width confidence bins of the expected calibration error (Guo et al. 2017 use 15)."""


def class_ids(target: torch.Tensor) -> torch.Tensor:
    """Class ids from ids or from soft targets (their most probable class)."""
    return target.argmax(-1) if target.is_floating_point() and target.dim() > 1 else target


def _accuracy_stats(outputs: torch.Tensor, target: torch.Tensor, labeled: torch.Tensor) -> torch.Tensor:
    hits = (outputs.argmax(-1) == class_ids(target)) & labeled
    return torch.stack([hits.sum(), labeled.sum()]).float()


def _ratio(stats: torch.Tensor) -> float:
    return float(stats[0] / stats[1]) if stats[1] > 0 else float("nan")


def _accuracy(outputs: torch.Tensor, target: torch.Tensor) -> float:
    from torchmetrics.functional.classification import multiclass_accuracy

    return multiclass_accuracy(outputs, class_ids(target), outputs.shape[-1], average="micro").item()


def _macro_f1(outputs: torch.Tensor, target: torch.Tensor) -> float:
    from torchmetrics.functional.classification import multiclass_f1_score

    return multiclass_f1_score(outputs, class_ids(target), outputs.shape[-1], average="macro").item()


def _nll(outputs: torch.Tensor, target: torch.Tensor) -> float:
    return F.cross_entropy(outputs.float(), class_ids(target)).item()


def _ece(outputs: torch.Tensor, target: torch.Tensor) -> float:
    from torchmetrics.functional.classification import multiclass_calibration_error

    probs = outputs.float().softmax(-1)
    classes = outputs.shape[-1]
    return multiclass_calibration_error(probs, class_ids(target), classes, n_bins=CALIBRATION_BINS, norm="l1").item()


ACCURACY = register(
    Metric("accuracy", "classification", True, _accuracy, _accuracy_stats, _ratio, stat_names=("correct", "labeled"))
)
MACRO_F1 = register(Metric("macro_f1", "classification", True, _macro_f1))
NLL = register(Metric("nll", "classification", False, _nll))
ECE = register(Metric("ece", "classification", False, _ece))
