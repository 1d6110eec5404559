"""Small built-in architectures with timm's interface (``forward_features``, ``forward_head``, ``head``).

Each builder takes the data's ``input_shape`` (channels first, without the batch) and
``num_classes`` plus its own size options, which a recipe sets.
"""

from __future__ import annotations

import math
from typing import Annotated

import torch
from pydantic import Field, PositiveInt
from torch import nn

from protege.models.text_students import TEXT_STUDENTS
from protege.options import MAX_DEPTH, Depth, DropRate, Width

DOUBLINGS = 12
"""At most this many stages whose channels double (cnn2d ``depth``, resnet ``blocks``): 2**11 times the width."""
Stages = Annotated[list[Annotated[int, Field(ge=1, le=64)]], Field(min_length=1, max_length=DOUBLINGS)]
"""resnet ``blocks``: 1 to 64 basic blocks in each of 1 to DOUBLINGS stages."""


class Classifier(nn.Module):
    """A feature extractor followed by a linear head, the shape every builtin model shares."""

    def __init__(self, features: nn.Module, feature_dim: int, num_classes: int, dropout: float = 0.0):
        super().__init__()
        self.features = features
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = nn.Linear(feature_dim, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class DenseBlock(nn.Module):
    """Linear + ReLU, plus the input when ``residual`` and the widths match (h + relu(W h + b))."""

    def __init__(self, in_features: int, out_features: int, residual: bool):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.residual = residual and in_features == out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.linear(x))
        return x + out if self.residual else out


def mlp(
    input_shape: tuple[int, ...],
    num_classes: int,
    hidden: Annotated[list[Width], Field(min_length=1, max_length=MAX_DEPTH)] | Width = 100,
    layers: Depth = 2,
    residual: bool = False,
    dropout: DropRate = 0.0,
) -> Classifier:
    """Multi-layer perceptron on the flattened input; ``hidden`` is one width for ``layers`` layers,
    or a list of widths. ``residual`` adds skip connections between layers of equal width (the
    MNIST-1D reference MLP has one)."""
    widths = list(hidden) if isinstance(hidden, (list, tuple)) else [int(hidden)] * layers
    blocks: list[nn.Module] = [nn.Flatten()]
    previous = math.prod(input_shape)
    for width in widths:
        blocks.append(DenseBlock(previous, width, residual))
        previous = width
    return Classifier(nn.Sequential(*blocks), previous, num_classes, dropout)


def cnn1d(
    input_shape: tuple[int, ...],
    num_classes: int,
    width: Width = 25,
    depth: Depth = 3,
    kernel_size: PositiveInt = 5,
    stride: PositiveInt = 2,
    dropout: DropRate = 0.0,
) -> Classifier:
    """1-D convolutions with stride (the MNIST-1D reference CNN by default), then a linear head."""
    channels = input_shape[0] if len(input_shape) == 2 else 1
    blocks: list[nn.Module] = [] if len(input_shape) == 2 else [nn.Unflatten(1, (1, -1))]
    for i in range(depth):
        k = kernel_size if i == 0 else 3
        blocks += [nn.Conv1d(channels if i == 0 else width, width, k, stride, padding=1), nn.ReLU()]
    blocks.append(nn.Flatten())
    features = nn.Sequential(*blocks)
    return Classifier(features, _output_size(features, input_shape), num_classes, dropout)


def cnn2d(
    input_shape: tuple[int, ...],
    num_classes: int,
    width: Width = 32,
    depth: Annotated[int, Field(ge=1, le=DOUBLINGS)] = 2,
    dropout: DropRate = 0.0,
) -> Classifier:
    """Plain 2-D CNN: ``depth`` conv-BN-ReLU blocks, channels doubling and resolution halving after
    the first, then global average pooling."""
    if len(input_shape) != 3:
        raise ValueError(f"cnn2d needs image inputs (channels, height, width), got shape {input_shape}")
    blocks: list[nn.Module] = []
    channels = input_shape[0]
    for i in range(depth):
        out = width * 2**i
        blocks += [
            nn.Conv2d(channels, out, 3, stride=1 if i == 0 else 2, padding=1, bias=False),
            nn.BatchNorm2d(out),
            nn.ReLU(),
        ]
        channels = out
    blocks += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return Classifier(nn.Sequential(*blocks), channels, num_classes, dropout)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (He et al. 2016)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


def resnet(
    input_shape: tuple[int, ...],
    num_classes: int,
    width: Width = 16,
    blocks: Stages | None = None,
    dropout: DropRate = 0.0,
) -> Classifier:
    """A small ResNet: a 3x3 stem, then stages of basic blocks (``blocks`` per stage), channels
    doubling and resolution halving from stage to stage."""
    if len(input_shape) != 3:
        raise ValueError(f"resnet needs image inputs (channels, height, width), got shape {input_shape}")
    blocks = blocks or [1, 1, 1]
    layers: list[nn.Module] = [
        nn.Conv2d(input_shape[0], width, 3, 1, 1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(),
    ]
    channels = width
    for stage, count in enumerate(blocks):
        out = width * 2**stage
        for b in range(count):
            layers.append(BasicBlock(channels, out, stride=2 if (stage > 0 and b == 0) else 1))
            channels = out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return Classifier(nn.Sequential(*layers), channels, num_classes, dropout)


def _output_size(module: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Feature size from a dry-run forward pass on one zero input."""
    with torch.no_grad():
        return int(module(torch.zeros(1, *input_shape)).shape[1])


BUILTIN = {"mlp": mlp, "cnn1d": cnn1d, "cnn2d": cnn2d, "resnet": resnet, **TEXT_STUDENTS}
"""The builtin architectures by name; ``fasttext`` and ``textcnn`` read token ids (protege.models.text_students)."""
