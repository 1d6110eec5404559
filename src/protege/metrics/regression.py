"""Regression: the outputs and targets are real values, one column per target. MAE and RMSE are
averaged over every target value; R² is each target's coefficient of determination, averaged over the
targets (scikit-learn's ``r2_score`` with ``multioutput="uniform_average"``)."""

from __future__ import annotations

import torch

from protege.metrics.base import Metric, register


def _as_columns(outputs: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    target = target.float().reshape(outputs.shape)
    return outputs.float(), target


def _error_stats(power: int):
    def stats(outputs: torch.Tensor, target: torch.Tensor, labeled: torch.Tensor) -> torch.Tensor:
        outputs, target = _as_columns(outputs, target)
        error = (outputs - target).abs().pow(power)[labeled]
        return torch.stack([error.sum(), torch.tensor(float(error.numel()), device=error.device)])

    return stats


def _mean(stats: torch.Tensor) -> float:
    return float(stats[0] / stats[1]) if stats[1] > 0 else float("nan")


def _root_mean(stats: torch.Tensor) -> float:
    return _mean(stats) ** 0.5


def _r2_stats(outputs: torch.Tensor, target: torch.Tensor, labeled: torch.Tensor) -> torch.Tensor:
    """Per target: Σy, Σy², Σ(ŷ − y)², then the count; R² = 1 − SS_res / (Σy² − (Σy)²/n)."""
    outputs, target = _as_columns(outputs, target)
    outputs, target = outputs[labeled], target[labeled]
    count = torch.tensor([float(len(target))], device=target.device)
    return torch.cat([target.sum(0), target.pow(2).sum(0), (outputs - target).pow(2).sum(0), count])


def _r2_from_stats(stats: torch.Tensor) -> float:
    n = stats[-1]
    if n < 2:
        return float("nan")
    total, squares, residual = stats[:-1].reshape(3, -1)
    spread = squares - total.pow(2) / n
    return float((1.0 - residual / spread.clamp_min(1e-12)).mean())


def _full(stats, value):
    def compute(outputs: torch.Tensor, target: torch.Tensor) -> float:
        return value(stats(outputs, target, torch.ones(len(outputs), dtype=torch.bool, device=outputs.device)))

    return compute


MAE = register(Metric("mae", "regression", False, _full(_error_stats(1), _mean), _error_stats(1), _mean))
RMSE = register(Metric("rmse", "regression", False, _full(_error_stats(2), _root_mean), _error_stats(2), _root_mean))
R2 = register(Metric("r2", "regression", True, _full(_r2_stats, _r2_from_stats), _r2_stats, _r2_from_stats))
