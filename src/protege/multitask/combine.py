"""How the tasks' losses become one update (each ``L_t`` already times its weight ``w_t``):

- ``equal``: L = Σ_t w_t L_t, one backward.
- ``uncertainty`` (Kendall, Gal & Cipolla 2018, eq. 7 in the form LibMTL uses for every task type):
  L = Σ_t ½ exp(−s_t) w_t L_t + ½ s_t, with s_t = log σ_t² learnt beside the model (checkpointed, never
  exported): a noisy task's weight falls as its learnt variance grows.
- a gradient method (Jacobian descent through torchjd): the task losses' gradients on the shared
  parameters are the rows of a Jacobian J, which an aggregator turns into the update: ``pcgrad`` (Yu et al.
  2020, projects away the conflicting parts), ``upgrad`` (Quinton & Rey 2024), ``mgda`` (Désidéri 2012;
  Sener & Koltun 2018, the min-norm point of the convex hull), ``imtl_g`` (Liu et al. 2021), ``dualproj``
  (Lopez-Paz & Ranzato 2017), ``aligned_mtl`` (Senushkin et al. 2023), ``mean``. Each head still gets its
  own task's gradient (torchjd's ``mtl_backward``).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence

import torch
from torch import nn

from protege.errors import ConfigError, did_you_mean
from protege.multitask.config import COMBINE_METHODS, GRADIENT_METHODS


class LogVariances(nn.Module):
    """Uncertainty weighting's learnt s_t = log σ_t², one per task, starting at 0 (weight ½)."""

    def __init__(self, tasks: Sequence[str]):
        super().__init__()
        self.tasks = list(tasks)
        self.log_variance = nn.Parameter(torch.zeros(len(self.tasks)))

    def forward(self, losses: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        s = self.log_variance
        return {name: 0.5 * torch.exp(-s[i]) * losses[name] + 0.5 * s[i] for i, name in enumerate(self.tasks)}


def aggregator(name: str, options: dict):
    """torchjd's aggregator of that name, built with ``options``."""
    from torchjd import aggregation

    classes = {
        "pcgrad": aggregation.PCGrad,
        "upgrad": aggregation.UPGrad,
        "mgda": aggregation.MGDA,
        "mean": aggregation.Mean,
        "imtl_g": aggregation.IMTLG,
        "dualproj": aggregation.DualProj,
        "aligned_mtl": aggregation.AlignedMTL,
    }
    import inspect

    known = [p for p in inspect.signature(classes[name]).parameters if p != "self"]
    unknown = [option for option in options if option not in known]
    if unknown:
        raise ConfigError(f"combine {name!r} has no option {unknown[0]!r}{did_you_mean(unknown[0], known)}; "
                          f"its options: {', '.join(known) or 'none'}")  # fmt: skip
    try:
        return classes[name](**options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"combine {name!r}: {exc}") from None


class Combine:
    """One combination method: the loss terms the loop logs and sums, and (gradient methods) the backward."""

    def __init__(self, name: str, options: dict, tasks: Sequence[str]):
        check_combine(name, options)
        self.name, self.tasks = name, list(tasks)
        self.weights = LogVariances(tasks) if name == "uncertainty" else None
        self.aggregator = aggregator(name, options) if name in GRADIENT_METHODS else None

    @property
    def gradient(self) -> bool:
        """Whether this method owns the backward (Jacobian descent)."""
        return self.aggregator is not None

    @property
    def trainable(self) -> nn.Module:
        return self.weights if self.weights is not None else nn.Module()

    def terms(self, losses: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Named loss terms, one per task, whose sum is the combined loss (logged as ``train_<task>``)."""
        return self.weights(losses) if self.weights is not None else dict(losses)

    def backward(
        self,
        terms: dict[str, torch.Tensor],
        features: torch.Tensor,
        shared: list[nn.Parameter],
        heads: dict[str, list[nn.Parameter]],
        scale: float,
    ) -> None:
        """The task terms through torchjd: each head its task's gradient, the shared parameters the
        aggregated Jacobian; any other term (a hook's) by a plain backward first. ``scale`` divides every
        loss (gradient accumulation)."""
        from torchjd.autojac import jac_to_grad, mtl_backward

        others = [value for name, value in terms.items() if name not in self.tasks]
        if others:
            (functools.reduce(operator.add, others) * scale).backward(retain_graph=True)
        losses = [terms[name] * scale for name in self.tasks]
        # the heads' outputs meet in one concatenation, which every task's backward passes through: the graph
        # is kept until the last task's (it is freed with the batch)
        mtl_backward(
            losses,
            features=features,
            tasks_params=[heads[name] for name in self.tasks],
            shared_params=shared,
            retain_graph=True,
        )
        jac_to_grad(shared, self.aggregator)


def check_combine(name: str, options: dict) -> None:
    """A known method whose options exist (one line otherwise)."""
    if name not in COMBINE_METHODS:
        raise ConfigError(
            f"unknown combine method {name!r}{did_you_mean(name, COMBINE_METHODS)}; known: {', '.join(COMBINE_METHODS)}"
        )
    if name not in GRADIENT_METHODS and options:
        raise ConfigError(f"combine {name!r} takes no options (got {', '.join(options)})")
    if name in GRADIENT_METHODS:
        aggregator(name, options)
