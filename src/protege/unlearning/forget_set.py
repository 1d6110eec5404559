"""Which training examples a request forgets, named as the user knows them (source rows, a class, a
seeded share), and the split of the training data into the forget set and the retain set. Examples are
recorded by a hash of their content, never the content itself (the audit trail)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch

from protege.data.dataset import ArrayDataset, DataBundle
from protege.errors import ConfigError
from protege.files import read_text
from protege.unlearning.config import ForgetConfig


@dataclass
class ForgetSplit:
    """Positions in the training split of the examples to forget, and the two parts."""

    positions: torch.Tensor
    forget: ArrayDataset
    retain: ArrayDataset
    how: str
    """The request in words (``10% at random``, ``class 3``, ``42 listed rows``)."""


def forget_positions(
    data: DataBundle, request: ForgetConfig, seed: int, base: Path | None = None
) -> tuple[torch.Tensor, str]:
    """Positions in ``data.train`` of the examples ``request`` names, and the request in words."""
    train = data.train
    if request.fraction is not None:
        count = max(1, round(request.fraction * len(train)))
        chosen = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed + 7))[:count]
        return torch.sort(chosen).values, f"{request.fraction:.0%} of the training examples at random ({count})"
    if request.class_name is not None:
        if request.class_name not in data.class_names:
            raise ConfigError(
                f"unlearning.forget.class: {request.class_name!r} is not a class of the data; its classes: "
                f"{', '.join(data.class_names[:12])}"
            )
        label = data.class_names.index(request.class_name)
        chosen = torch.nonzero(train.y == label).flatten()
        return chosen, f"every training example of class {request.class_name} ({len(chosen)})"
    rows = request.rows if request.rows is not None else read_rows(Path(request.file), base)
    return positions_of_rows(data, rows), f"{len(rows)} listed rows"


def read_rows(path: Path, base: Path | None = None) -> list[int]:
    """Source rows from a text file: one integer per line; blank lines and ``#`` comments are skipped."""
    if not path.is_absolute() and base is not None:
        path = base / path
    rows = []
    for number, line in enumerate(read_text(path, ConfigError).splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            rows.append(int(text))
        except ValueError:
            raise ConfigError(
                f"{path}, line {number}: {text!r} is not a row number; list one integer per line"
            ) from None
    if not rows:
        raise ConfigError(f"{path} lists no rows to forget")
    return rows


def positions_of_rows(data: DataBundle, rows: list[int]) -> torch.Tensor:
    """The training positions of source ``rows``; a row in another split or not in the data is refused."""
    where = {int(r): i for i, r in enumerate(data.rows["train"].tolist())}
    elsewhere = {int(r): split for split in ("val", "test") if split in data.rows for r in data.rows[split].tolist()}
    positions = []
    for row in rows:
        if row in where:
            positions.append(where[row])
        elif row in elsewhere:
            raise ConfigError(
                f"row {row} is in the {elsewhere[row]} split, not the training data, so no model learned from it; "
                "list training rows only"
            )
        else:
            total = sum(len(r) for r in data.rows.values())
            raise ConfigError(f"row {row} is not in the data ({total} rows, numbered from 0); check the ids to forget")
    return torch.tensor(sorted(set(positions)), dtype=torch.long)


def split_training(data: DataBundle, positions: torch.Tensor, how: str) -> ForgetSplit:
    """The forget set (the named examples) and the retain set (the rest of the training split)."""
    train = data.train
    keep = torch.ones(len(train), dtype=torch.bool)
    keep[positions] = False
    if not keep.any():
        raise ConfigError("the request forgets every training example; nothing would be left to learn from")
    forget = ArrayDataset(train.x[positions], train.y[positions], train.labeled[positions])
    retain = ArrayDataset(train.x[keep], train.y[keep], train.labeled[keep])
    return ForgetSplit(positions, forget, retain, how)


def example_hashes(dataset: ArrayDataset) -> list[str]:
    """A SHA-256 of each example's input and label: who can check an example was forgotten, without its content."""
    out = []
    for x, y in zip(dataset.x, dataset.y, strict=True):
        digest = hashlib.sha256(x.contiguous().numpy().tobytes())
        digest.update(y.contiguous().numpy().tobytes())
        out.append(digest.hexdigest())
    return out
