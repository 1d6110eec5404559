"""What a classifier's head reads: the features that iCaRL's exemplar herding and its nearest-mean
classifier work with, taken at the input of the head module (any model with a findable head)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn
from torch.nn import functional as F

from protege.transfer.split import find_head


@contextlib.contextmanager
def head_input_tap(model: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Within the block, every forward of ``model`` appends its head's input (flattened) to the list."""
    seen: list[torch.Tensor] = []
    head = model.get_submodule(find_head(model))
    handle = head.register_forward_pre_hook(lambda _module, args: seen.append(args[0].flatten(1)))
    try:
        yield seen
    finally:
        handle.remove()


@torch.no_grad()
def head_inputs(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """The L2-normalised head inputs of ``x``, in evaluation mode (as iCaRL normalises its features)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        with head_input_tap(model) as seen:
            for start in range(0, len(x), batch_size):
                model(x[start : start + batch_size].to(device))
        return F.normalize(torch.cat(seen).float(), dim=1).cpu()
    finally:
        model.train(was_training)


class NearestMeanClassifier(nn.Module):
    """iCaRL's nearest-mean-of-exemplars rule (Rebuffi et al. 2017, Alg. 1): an example goes to the class
    whose exemplars' mean (normalised) feature is closest to its own; the logits are the negative squared
    distances, so argmax, accuracy and the report read them like any model's."""

    def __init__(self, model: nn.Module, means: torch.Tensor):
        super().__init__()
        self.model = model
        self.register_buffer("means", F.normalize(means.float(), dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with head_input_tap(self.model) as seen:
            self.model(x)
        features = F.normalize(seen[-1].float(), dim=1)
        return -torch.cdist(features, self.means.to(features.device)).pow(2)


def class_means(features: torch.Tensor, labels: torch.Tensor, classes: int) -> torch.Tensor:
    """The mean feature of each class id below ``classes`` (zeros for a class without examples)."""
    means = torch.zeros(classes, features.shape[1])
    means.index_add_(0, labels, features)
    counts = torch.bincount(labels, minlength=classes).clamp(min=1).unsqueeze(1)
    return means / counts
