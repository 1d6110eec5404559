"""Transfer sets: unlabeled inputs that only the teacher labels (Hinton et al. 2015, section 3).

Either another data source (``mnist1d`` with another seed: new samples of the same distribution),
or inputs derived from the labelled training inputs when no unlabeled data exist: ``mixup`` draws
convex combinations of training pairs, on which the student learns to match the teacher's function
between the examples as well as on them (Beyer et al. 2022, "a good teacher is patient and consistent").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import torch
from pydantic import Field, PositiveFloat

from protege.data.build import load_unlabeled
from protege.data.dataset import UNLABELED, ArrayDataset
from protege.data.streamed import refuse_streamed
from protege.errors import DataError
from protege.options import check_options, signature_fields
from protege.registry import Registry

DERIVED: Registry[Callable[..., torch.Tensor]] = Registry("derived transfer set")


@DERIVED.register("mixup")
def mixup(
    x: torch.Tensor,
    seed: int,
    num_samples: Annotated[int, Field(ge=1, le=1_000_000)] = 10000,
    alpha: PositiveFloat = 1.0,
) -> torch.Tensor:
    """``num_samples`` inputs λ·x_i + (1−λ)·x_j, pairs drawn uniformly, λ ~ Beta(alpha, alpha); seeded,
    so the same recipe yields the same set and the teacher cache stays exact."""
    generator = torch.Generator().manual_seed(seed)
    i = torch.randint(len(x), (num_samples,), generator=generator)
    j = torch.randint(len(x), (num_samples,), generator=generator)
    beta = torch.distributions.Beta(torch.tensor(float(alpha)), torch.tensor(float(alpha)))
    # Beta.sample uses the global generator; draw from a fixed state without disturbing the caller's
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        lam = beta.sample((num_samples,)).view(-1, *([1] * (x.dim() - 1)))
    return lam * x[i] + (1 - lam) * x[j]


def is_transfer_source(name: str) -> bool:
    return name in DERIVED


def build_transfer_set(
    source: str,
    options: dict,
    train: ArrayDataset,
    seed: int,
    limit: int | None = None,
    text_encoder=None,
    preprocess: dict | None = None,
) -> ArrayDataset:
    """The transfer set a recipe names, as unlabeled examples shaped like the training inputs; another
    source goes through the labelled data's encoding: its fitted ``text_encoder`` for texts, and its
    ``preprocess`` (feature columns, standardisation) for numbers."""
    refuse_streamed(train, "a transfer set")  # it is joined to the training inputs
    if source in DERIVED:
        if not train.x.is_floating_point():
            raise DataError(f"transfer set {source!r} mixes numeric inputs; token ids cannot be mixed")
        builder = DERIVED.get(source)
        fields = signature_fields(builder, skip=("x", "seed"))
        options = check_options(f"transfer set {source!r}", fields, options, DataError)
        x = builder(train.x, seed, **options)
        x = x[:limit] if limit else x
        extra = ArrayDataset(x, torch.full((len(x),), UNLABELED, dtype=torch.long))
    else:
        extra = load_unlabeled(source, options, limit, text_encoder, preprocess)
    if extra.x.shape[1:] != train.x.shape[1:]:
        raise DataError(
            f"transfer set inputs have shape {tuple(extra.x.shape[1:])}, the data's are {tuple(train.x.shape[1:])}"
        )
    return extra
