"""What a torchdistill user adds to distil on MNIST-1D offline: a dataset and two models in its registries.

The benchmark's torchdistill config names this module under ``dependencies`` and builds its datasets
from it. The architectures are protege's builtin ones, so both frameworks train the same networks.
"""

from __future__ import annotations

import torch
from safetensors.torch import load_file
from torch.utils.data import Dataset
from torchdistill.datasets.registry import register_dataset
from torchdistill.models.registry import register_model

from protege.models.builtin import cnn1d, mlp

INPUT_SHAPE = (1, 40)  # MNIST-1D: one channel of 40 samples


@register_dataset(key="MNIST1DTensors")
class MNIST1DTensors(Dataset):
    """One split (``train`` or ``test``) of the tensors the benchmark wrote; (input, label) per item,
    as torchvision datasets give them."""

    def __init__(self, path: str, split: str) -> None:
        tensors = load_file(path)
        self.x = tensors[f"x_{split}"]
        self.y = tensors[f"y_{split}"]

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[index], self.y[index]


@register_model(key="mnist1d_cnn")
def mnist1d_cnn(num_classes: int = 10, width: int = 64) -> torch.nn.Module:
    """The teacher: protege's cnn1d (strided 1-D convolutions, then a linear head)."""
    return cnn1d(INPUT_SHAPE, num_classes, width=width)


@register_model(key="mnist1d_mlp")
def mnist1d_mlp(num_classes: int = 10, hidden: int = 256) -> torch.nn.Module:
    """The student: protege's residual MLP (40 → hidden → hidden → classes)."""
    return mlp(INPUT_SHAPE, num_classes, hidden=hidden, residual=True)
