"""Growing a classifier: new output units for new classes, the old units' weights kept as they are.

Class-incremental learning (protege.continual) meets new classes experience after experience; like
Avalanche's ``IncrementalClassifier``, the output layer gains rows and the card records every class the
model now knows, in output order (so a saved model rebuilds at its grown size).
"""

from __future__ import annotations

import torch
from torch import nn

from protege.errors import ModelError
from protege.models.store import ModelCard
from protege.transfer.split import find_head


def grow_classes(module: nn.Module, card: ModelCard, class_names: list[str], who: str) -> None:
    """Extend ``module``'s output layer so that it predicts ``class_names``, which must start with the
    classes it knows (in order); new rows start as a fresh ``nn.Linear`` would."""
    known = list(card.class_names)
    if class_names[: len(known)] != known:
        raise ModelError(
            f"{who} knows the classes {known}, and the new class list {class_names} does not start with them; "
            "a growing head keeps its old outputs first"
        )
    if len(class_names) == len(known):
        return
    path = find_head(module)
    head = module.get_submodule(path)
    if not isinstance(head, nn.Linear):
        raise ModelError(f"{who}: its head {path!r} is a {type(head).__name__}, and only a Linear head can grow")
    grown = nn.Linear(head.in_features, len(class_names), bias=head.bias is not None)
    grown = grown.to(device=head.weight.device, dtype=head.weight.dtype)
    with torch.no_grad():
        grown.weight[: len(known)] = head.weight
        if head.bias is not None:
            grown.bias[: len(known)] = head.bias
    parent_path, _, name = path.rpartition(".")
    setattr(module.get_submodule(parent_path) if parent_path else module, name, grown)
    card.class_names = list(class_names)
