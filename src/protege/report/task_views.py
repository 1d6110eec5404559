"""What the report shows for each task type (protege.tasks): the test metrics of a model, how a model
compares with the teacher, and the columns of the summary tables. Classification keeps its own richer
report (calibration, confusion matrices, fairness); multi-label and regression get theirs here."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from protege.metrics import metrics_of
from protege.tasks import get_task

SCATTER_POINTS = 500
"""At most this many (true, predicted) pairs of a regression model's first target go into the report."""


@dataclass(frozen=True)
class Column:
    """A column of the summary tables: its heading, the entry key it reads, and how to print the value."""

    heading: str
    key: str
    style: str = "num"
    """``pct`` (a share), ``num`` (3 decimals) or ``sig`` (4 significant digits, for values with units)."""

    def format(self, value: float | None) -> str:
        if value is None:
            return "–"
        if self.style == "pct":
            return f"{value:.1%}"
        return f"{value:.4g}" if self.style == "sig" else f"{value:.3f}"


QUALITY: dict[str, list[Column]] = {
    "classification": [
        Column("test accuracy", "accuracy", "pct"),
        Column("macro-F1", "macro_f1"),
        Column("NLL", "nll"),
        Column("ECE", "ece"),
    ],
    "multilabel": [Column("micro-F1", "micro_f1"), Column("macro-F1", "macro_f1"), Column("mAP", "map")],
    "regression": [Column("MAE", "mae", "sig"), Column("RMSE", "rmse", "sig"), Column("R²", "r2")],
    "multitask": [Column("mean score", "mean_score")],
}
AGAINST_TEACHER: dict[str, list[Column]] = {
    "classification": [
        Column("agreement with teacher", "agreement", "pct"),
        Column("KL to teacher", "kl_to_teacher"),
        Column("accuracy retained", "accuracy_retained", "pct"),
    ],
    "multilabel": [Column("agreement with teacher", "agreement", "pct"), Column("mAP retained", "map_retained", "pct")],
    "regression": [Column("RMSE to teacher", "rmse_to_teacher", "sig"), Column("R² retained", "r2_retained", "pct")],
    "multitask": [Column("mean score retained", "mean_score_retained", "pct")],
}
HEADLINE = {"classification": "accuracy", "multilabel": "micro_f1", "regression": "r2", "multitask": "mean_score"}
"""The one number per model the accuracy-versus-latency figure plots."""


def quality(task: str, outputs: torch.Tensor, target: torch.Tensor, names: list[str]) -> dict:
    """Every metric of a multi-label or regression task on the test split, per label or target too."""
    entry = {metric.name: metric.compute(outputs, target) for metric in metrics_of(task)}
    if task == "multilabel":
        per_label = get_task(task).metric("macro_f1")
        entry["per_label_f1"] = [per_label.compute(outputs[:, [i]], target[:, [i]]) for i in range(outputs.shape[1])]
        entry["label_frequency"] = target.float().mean(0).tolist()
    if task == "regression":
        values = target.float().reshape(outputs.shape)
        if outputs.shape[1] > 1:
            entry["per_target"] = {
                name: {m.name: m.compute(outputs[:, [i]], values[:, [i]]) for m in metrics_of(task)}
                for i, name in enumerate(names)
            }
        keep = torch.linspace(0, len(values) - 1, min(SCATTER_POINTS, len(values))).long()
        entry["scatter"] = {
            "target": names[0],
            "true": values[keep, 0].tolist(),
            "predicted": outputs[keep, 0].float().tolist(),
        }
    return entry


def against_teacher(task: str, outputs: torch.Tensor, teacher: torch.Tensor, entry: dict, reference: dict) -> dict:
    """How a multi-label or regression model's test outputs compare with the teacher's."""
    if task == "multilabel":
        return {
            "agreement": ((outputs > 0) == (teacher > 0)).float().mean().item(),
            "map_retained": entry["map"] / reference["map"] if reference.get("map") else None,
        }
    gap = (outputs.float() - teacher.float()).pow(2).mean().sqrt().item()
    retained = entry["r2"] / reference["r2"] if reference.get("r2") and reference["r2"] > 0 else None
    return {"rmse_to_teacher": gap, "r2_retained": retained}
