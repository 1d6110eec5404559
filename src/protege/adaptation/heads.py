"""The trainable parts the adversarial methods add beside the model: DANN's and CDAN's domain
discriminator, CDAN's multilinear conditioning (randomized for large dimensions) and MDD's auxiliary
(adversarial) classifier. They belong to the step: checkpointed with the stage, never exported."""

from __future__ import annotations

import math

import torch
from torch import nn


def discriminator(in_features: int, hidden: int) -> nn.Sequential:
    """Two hidden layers with BatchNorm and ReLU, then one logit (source = 1, target = 0), as the reference
    implementations' DomainDiscriminator (Transfer-Learning-Library; Ganin et al. use 1024 units for images)."""
    return nn.Sequential(
        nn.Linear(in_features, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(),
        nn.Linear(hidden, 1),
    )


def auxiliary_classifier(in_features: int, hidden: int, num_classes: int) -> nn.Sequential:
    """MDD's adversarial head h′: one hidden layer, as its reference head (Zhang et al. 2019)."""
    return nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Dropout(0.5), nn.Linear(hidden, num_classes))


class MultilinearMap(nn.Module):
    """CDAN's conditioning T(f, g) (Long et al. 2018, eq. 4 and 5): the outer product f ⊗ g of features and
    class probabilities, flattened; above ``max_dim`` values, the randomized map (R_f f) ⊙ (R_g g) / √d with
    fixed Gaussian R_f, R_g of ``randomized_dim`` rows (drawn once from ``seed``, kept as buffers)."""

    def __init__(self, features: int, classes: int, max_dim: int, randomized_dim: int, seed: int):
        super().__init__()
        self.randomized = features * classes > max_dim
        self.out_features = randomized_dim if self.randomized else features * classes
        if self.randomized:
            generator = torch.Generator().manual_seed(seed)
            self.register_buffer("r_f", torch.randn(features, randomized_dim, generator=generator))
            self.register_buffer("r_g", torch.randn(classes, randomized_dim, generator=generator))

    def forward(self, f: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        if self.randomized:
            return (f @ self.r_f) * (g @ self.r_g) / math.sqrt(self.out_features)
        return torch.bmm(g.unsqueeze(2), f.unsqueeze(1)).flatten(1)
