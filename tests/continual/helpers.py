"""Small streams for the continual tests: a few classes of random inputs, split like a run splits them."""

import torch

from protege.continual.config import ContinualConfig
from protege.continual.streams import build_stream
from protege.data.dataset import ArrayDataset, DataBundle


def bundle(classes: int = 6, per_class: int = 10, shape: tuple[int, ...] = (4,), seed: int = 0) -> DataBundle:
    """Every split holds ``per_class`` examples of each class; inputs are random, labels in order."""
    generator = torch.Generator().manual_seed(seed)

    def split() -> ArrayDataset:
        y = torch.arange(classes).repeat_interleave(per_class)
        return ArrayDataset(torch.randn((len(y), *shape), generator=generator), y)

    names = [f"c{i}" for i in range(classes)]
    return DataBundle(split(), split(), split(), names, "test", split={"source": "test"})


def stream(scenario: str = "class_incremental", experiences: int = 3, **options):
    data = options.pop("data", None) or bundle()
    return build_stream(data, ContinualConfig(scenario=scenario, experiences=experiences, **options), seed=0)
