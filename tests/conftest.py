"""Shared fixtures: tiny in-memory data and models, quiet output, few threads."""

from __future__ import annotations

import os

os.environ.setdefault("PROTEGE_QUIET", "1")

import pytest
import torch

from protege.data.dataset import ArrayDataset, DataBundle


def make_blobs(n: int = 96, features: int = 6, classes: int = 3, seed: int = 0) -> ArrayDataset:
    """Separable Gaussian blobs: a tiny task every model learns in a few steps. The class centres are
    fixed; ``seed`` draws other samples around them (another split of the same task)."""
    centers = torch.randn(classes, features, generator=torch.Generator().manual_seed(1234)) * 3
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    x = centers[y] + torch.randn(n, features, generator=g)
    return ArrayDataset(x, y)


@pytest.fixture
def blobs() -> DataBundle:
    return DataBundle(
        train=make_blobs(96, seed=0),
        val=make_blobs(30, seed=1),
        test=make_blobs(30, seed=2),
        class_names=["a", "b", "c"],
        source="blobs",
    )


@pytest.fixture(autouse=True)
def _few_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
