"""Per-epoch training sums (loss, loss terms and the task's training metric) kept on the device.

Each step adds into two small vectors with a handful of tensor ops and no host copy; the numbers are
read, and summed across processes, once per epoch. Checkpoints store them as a plain dict of scalars,
the metric's sums under its own names (``correct`` and ``labeled`` for accuracy).
"""

from __future__ import annotations

import torch

from protege.errors import CheckpointError
from protege.metrics import Metric
from protege.metrics.classification import ACCURACY
from protege.tasks import labeled_mask

FIXED = ("loss",)
"""Sums weighted by the batch size, before the objective's terms."""


class RunningSums:
    """Sums over the batches of one epoch: ``add`` every step, ``totals`` at the end."""

    def __init__(self, metric: Metric = ACCURACY) -> None:
        self.metric = metric
        self.examples = 0.0  # counted on the host: a batch's size is known without asking the device
        self._term_names: tuple[str, ...] | None = None  # the terms of the last batch, to skip re-keying
        self.weighted_keys: tuple[str, ...] = ()  # "loss", then "term.<name>" for each loss term
        self.weighted: torch.Tensor | None = None  # Σ value · batch size, in weighted_keys order
        self.counts: torch.Tensor | None = None  # the metric's sums

    @torch.no_grad()
    def add(
        self,
        loss: torch.Tensor,
        terms: dict[str, torch.Tensor],
        outputs: torch.Tensor,
        target: torch.Tensor,
        labeled: torch.Tensor | None = None,
    ) -> None:
        """Add one batch: the loss and each term weighted by the batch size, and the metric's sums over
        the labelled examples."""
        n = len(target)
        values = torch.stack([loss, *terms.values()]).float()
        names = tuple(terms)
        if self.weighted is None or names != self._term_names:
            keys = FIXED + tuple(f"term.{name}" for name in names)
            if self.weighted is None:
                self.weighted_keys, self.weighted = keys, torch.zeros_like(values)
            elif keys != self.weighted_keys:  # a term appeared or went away mid-epoch (a strategy's penalty)
                values = self._align(keys, values)
                names = None  # keep aligning while the terms differ from the sums' keys
            self._term_names = names
        self.weighted.add_(values, alpha=n)
        counts = self.metric.stats(outputs.detach(), target, labeled_mask(target, labeled))
        self.counts = counts if self.counts is None else self.counts.add_(counts)
        self.examples += n

    def _align(self, keys: tuple[str, ...], values: torch.Tensor) -> torch.Tensor:
        """Widen the sums to the union of the old and new keys; ``values`` in that order (0 where missing)."""
        assert self.weighted is not None
        zero = torch.zeros_like(self.weighted[0])
        old = dict(zip(self.weighted_keys, self.weighted, strict=True))
        new = dict(zip(keys, values, strict=True))
        self.weighted_keys = tuple(dict.fromkeys(self.weighted_keys + keys))
        self.weighted = torch.stack([old.get(k, zero) for k in self.weighted_keys])
        return torch.stack([new.get(k, zero) for k in self.weighted_keys])

    @property
    def count_names(self) -> tuple[str, ...]:
        """The checkpoint names of the metric's sums."""
        if self.metric.stat_names:
            return self.metric.stat_names
        size = len(self.counts) if self.counts is not None else 0
        return tuple(f"{self.metric.name}.{i}" for i in range(size))

    def as_dict(self) -> dict[str, torch.Tensor]:
        """Scalars by name (``examples``, ``loss``, ``term.<name>``, the metric's sums), as in checkpoints."""
        if self.weighted is None or self.counts is None:
            return {}
        scalars = dict(zip(self.weighted_keys, self.weighted.detach().clone(), strict=True))
        scalars.update(zip(self.count_names, self.counts.clone(), strict=True))
        scalars["examples"] = torch.tensor(self.examples, device=self.counts.device)
        return scalars

    @classmethod
    def from_dict(cls, scalars: dict[str, torch.Tensor], metric: Metric = ACCURACY) -> RunningSums:
        """The sums a checkpoint stored (an empty dict starts from zero)."""
        sums = cls(metric)
        if not scalars:
            return sums
        sums.examples = float(scalars["examples"])
        sums.weighted_keys = tuple(k for k in scalars if k in FIXED or k.startswith("term."))
        sums.weighted = torch.stack([scalars[k].float() for k in sums.weighted_keys])
        names = metric.stat_names or sorted(
            (k for k in scalars if k.startswith(f"{metric.name}.") and k.rpartition(".")[2].isdigit()),
            key=lambda k: int(k.rpartition(".")[2]),
        )
        missing = [name for name in names if name not in scalars]
        if missing or not names:
            shown = ", ".join(missing) or f"the sums of {metric.name}"
            raise CheckpointError(f"the checkpoint's running sums lack {shown}; delete the checkpoint to start over")
        sums.counts = torch.stack([scalars[k].float() for k in names])
        return sums

    def totals(self, reduce_sum=lambda t: t) -> dict[str, float]:
        """Every sum as a float, after ``reduce_sum`` (the sum across processes) on one stacked vector."""
        scalars = self.as_dict()
        if not scalars:
            scalars = {"examples": torch.tensor(0.0)}
        keys = sorted(scalars)
        return dict(zip(keys, reduce_sum(torch.stack([scalars[k].float() for k in keys])).tolist(), strict=True))

    def metric_value(self, totals: dict[str, float]) -> float | None:
        """The training metric from ``totals``; None when no labelled example was seen."""
        names = self.count_names
        if not names or not all(name in totals for name in names):
            return None
        value = self.metric.from_stats(torch.tensor([totals[name] for name in names]))
        return value if value == value else None  # NaN: nothing labelled
