"""Metrics by name, one registry for training sums, validation, early stopping and evaluation.

A metric either sums (``stats`` gives a small vector per batch whose sum over batches and processes
``from_stats`` turns into the value; training sums and validation use these, and so can stop early on
them) or needs every prediction at once (``compute`` only: mAP, calibration), which evaluation has.
Each metric belongs to a task type (protege.tasks) and says whether higher is better.
"""

from protege.metrics import classification, multilabel, regression  # registers each task type's metrics
from protege.metrics.base import Metric, Stats, get_metric, metrics_of, register

__all__ = ["Metric", "Stats", "classification", "get_metric", "metrics_of", "multilabel", "register", "regression"]
