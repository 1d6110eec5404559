"""A fixed-size replay buffer of training examples, filled experience after experience:

- ``reservoir`` (Vitter 1985; the buffer of experience replay and DER, Chaudhry et al. 2019, Buzzega et
  al. 2020): every example seen so far has the same chance to be kept, whatever experience it came from;
- ``class_balanced``: the same number of slots per class seen so far, filled at random;
- ``herding``: per class, the examples whose running mean best matches the class mean of the features
  (iCaRL, Rebuffi et al. 2017, Alg. 4); their order is their priority, so shrinking keeps the best.

The buffer holds tensors only (examples, labels, task ids, logits stored with them), which is its
checkpointed state.
"""

from __future__ import annotations

from typing import Literal

import torch

from protege.continual.streams import TaggedDataset, join

Selection = Literal["reservoir", "class_balanced", "herding"]


class ReplayBuffer:
    """At most ``size`` examples; ``add`` offers it one experience's training examples (with whatever
    extras they carry: DER's stored logits travel with their example)."""

    def __init__(self, size: int, selection: Selection = "reservoir", seed: int = 0):
        self.size, self.selection, self.seed = size, selection, seed
        self.data: TaggedDataset | None = None
        self.seen = 0

    def __len__(self) -> int:
        return len(self.data) if self.data is not None else 0

    def add(self, examples: TaggedDataset, number: int, features: torch.Tensor | None = None) -> None:
        """Offer the examples of experience ``number`` (``features``: the head inputs herding needs)."""
        generator = torch.Generator().manual_seed(self.seed * 7_919 + number)
        if self.selection == "reservoir":
            self._reservoir(examples, generator)
            return
        if self.selection == "herding":
            if features is None:
                raise ValueError("herding selects by the model's features; pass them")
            priority = _herding_order(features, examples.y, self.size)
        else:
            priority = torch.randperm(len(examples), generator=generator)
        self.seen += len(examples)
        kept = examples.subset(priority)
        self.data = _per_class_prefix(join([self.data, kept]) if self.data is not None else kept, self.size)

    def _reservoir(self, examples: TaggedDataset, generator: torch.Generator) -> None:
        """Vitter's algorithm R over the examples in a seeded order: the n-th example seen replaces a random
        slot with probability size / n."""
        slots: dict[int, int] = {}  # buffer slot -> position in examples (a later example overwrites)
        filled = len(self)
        for position in torch.randperm(len(examples), generator=generator).tolist():
            if filled < self.size:
                slots[filled] = position
                filled += 1
            else:
                j = int(torch.randint(0, self.seen + 1, (1,), generator=generator))
                if j < self.size:
                    slots[j] = position
            self.seen += 1
        self._write(examples, slots)

    def _write(self, examples: TaggedDataset, slots: dict[int, int]) -> None:
        order = sorted(slots)
        incoming = examples.subset(torch.tensor([slots[s] for s in order], dtype=torch.long))
        if self.data is None:
            self.data = incoming
            return
        old = len(self.data)
        appended = torch.tensor([i for i, s in enumerate(order) if s >= old], dtype=torch.long)
        merged = join([self.data, incoming.subset(appended)])
        replaced = [(s, i) for i, s in enumerate(order) if s < old]
        if replaced:
            target = torch.tensor([s for s, _ in replaced], dtype=torch.long)
            source = torch.tensor([i for _, i in replaced], dtype=torch.long)
            merged.x[target], merged.y[target] = incoming.x[source], incoming.y[source]
            merged.labeled[target] = incoming.labeled[source]
            for key, values in incoming.extras.items():
                merged.extras[key][target] = values[source]
        self.data = merged

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = {"seen": torch.tensor(self.seen)}
        if self.data is not None:
            state.update({"x": self.data.x, "y": self.data.y, "labeled": self.data.labeled})
            state.update({f"extra.{key}": values for key, values in self.data.extras.items()})
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.seen = int(state["seen"])
        if "x" not in state:
            self.data = None
            return
        extras = {key.removeprefix("extra."): value for key, value in state.items() if key.startswith("extra.")}
        self.data = TaggedDataset(state["x"], state["y"], state["labeled"], extras)

    def nbytes(self) -> int:
        """Memory the buffer holds."""
        return sum(t.numel() * t.element_size() for t in self.state_dict().values())


def _per_class_prefix(data: TaggedDataset, size: int) -> TaggedDataset:
    """Keep the first examples of every class, ``size // classes`` each (the first classes get the rest)."""
    classes = torch.unique(data.y)
    quota, extra = divmod(size, len(classes))
    keep = []
    for rank, c in enumerate(classes.tolist()):
        members = torch.nonzero(data.y == c).flatten()
        keep.append(members[: quota + (1 if rank < extra else 0)])
    return data.subset(torch.sort(torch.cat(keep)).values)


def _herding_order(features: torch.Tensor, labels: torch.Tensor, picks: int) -> torch.Tensor:
    """Per class, iCaRL's herding: the k-th pick minimises ‖μ − (Σ picked + φ)/k‖ over the unpicked φ
    (at most ``picks`` per class). Returns positions, one class after another, each in pick order."""
    order = []
    for c in torch.unique(labels).tolist():
        members = torch.nonzero(labels == c).flatten()
        phi = features[members]
        mu = phi.mean(0)
        picked: list[int] = []
        total = torch.zeros_like(mu)
        available = torch.ones(len(members), dtype=torch.bool)
        for k in range(1, min(len(members), picks) + 1):
            distance = (mu - (total + phi) / k).norm(dim=1)
            distance[~available] = float("inf")
            best = int(distance.argmin())
            picked.append(best)
            available[best] = False
            total += phi[best]
        order.append(members[torch.tensor(picked, dtype=torch.long)])
    return torch.cat(order)
