"""How much each parameter matters to what a model learned, for the penalties that keep it there:

- EWC's Fisher information (Kirkpatrick et al. 2017): F_i = E_x[(∂ log p(y|x) / ∂θ_i)²], the empirical
  Fisher with the true labels (as Avalanche computes it), from per-example gradients, not the square of a
  batch's mean gradient;
- MAS's importance (Aljundi et al. 2018, eq. 4): Ω_i = E_x[|∂ ‖f(x)‖²₂ / ∂θ_i|], label-free.

Both average over the examples of an experience in evaluation mode (dropout off, BatchNorm statistics
used, not updated), with per-example gradients from ``torch.func``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call, grad, vmap
from torch.nn import functional as F

from protege.data.dataset import ArrayDataset

PerExampleLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""(logits of one example, its label) -> a scalar."""


def fisher_diagonal(model: nn.Module, data: ArrayDataset, batch_size: int = 256) -> dict[str, torch.Tensor]:
    """EWC's diagonal Fisher: the mean over examples of the squared gradient of their log-likelihood."""

    def negative_log_likelihood(logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), label)

    return _mean_over_examples(model, data, negative_log_likelihood, torch.square, batch_size)


def mas_importance(model: nn.Module, data: ArrayDataset, batch_size: int = 256) -> dict[str, torch.Tensor]:
    """MAS: the mean over examples of the absolute gradient of the squared L2 norm of the outputs."""

    def squared_norm(logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        del label  # MAS needs no labels
        return logits.float().pow(2).sum()

    return _mean_over_examples(model, data, squared_norm, torch.abs, batch_size)


def _mean_over_examples(
    model: nn.Module,
    data: ArrayDataset,
    loss: PerExampleLoss,
    reduce: Callable[[torch.Tensor], torch.Tensor],
    batch_size: int,
) -> dict[str, torch.Tensor]:
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    params = {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}
    buffers = {name: b.detach() for name, b in model.named_buffers()}

    def one(parameters: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = functional_call(model, (parameters, buffers), (x.unsqueeze(0),))
        return loss(logits[0], y)

    per_example = vmap(grad(one), in_dims=(None, 0, 0))
    totals = {name: torch.zeros_like(p) for name, p in params.items()}
    try:
        for start in range(0, len(data), batch_size):
            x = data.x[start : start + batch_size].to(device)
            y = data.y[start : start + batch_size].to(device)
            for name, g in per_example(params, x, y).items():
                totals[name] += reduce(g).sum(0)
    finally:
        model.train(was_training)
    return {name: (total / max(len(data), 1)).cpu() for name, total in totals.items()}
