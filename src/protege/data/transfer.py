"""Transfer sets: unlabeled inputs that only the teacher labels (Hinton et al. 2015, section 3).

Either another data source (``mnist1d`` with another seed: new samples of the same distribution; a file
of texts, ``texts:path``; a table's text column), or inputs derived from the labelled training inputs when
no unlabeled data exist: ``mixup`` draws convex combinations of training pairs, on which the student
learns to match the teacher's function between the examples as well as on them (Beyer et al. 2022, "a
good teacher is patient and consistent"), and for texts ``word_mask``, ``word_delete`` and ``span_mix``
make new texts of the training texts' words (protege.data.text_augment).

A transfer set of texts keeps them raw: each model's view encodes them with its own fitted encoder (the
teacher its tokenizer, the student its vocabulary or TF-IDF), the same examples in the same order, so the
teacher's outputs, cached by example, line up with the student's batches (protege.data.views).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import numpy as np
import torch
from pydantic import Field, PositiveFloat

from protege.data.build import load_unlabeled
from protege.data.dataset import ArrayDataset, DataBundle
from protege.data.streamed import refuse_streamed
from protege.data.text_augment import mask_word, span_mix, unmasked, word_delete, word_mask
from protege.data.unlabeled import TEXT_FILE, unlabeled_texts
from protege.errors import DataError
from protege.options import check_options, signature_fields
from protege.registry import Registry

DERIVED: Registry[Callable[..., Any]] = Registry("derived transfer set")
"""Transfer sets derived from the training inputs: ``mixup`` (numbers) and the text augmentations."""

FROM_TEXTS = ("word_mask", "word_delete", "span_mix")
"""The derived transfer sets made from the raw training texts (the others from the input tensors)."""

for _name, _builder in zip(FROM_TEXTS, (word_mask, word_delete, span_mix), strict=True):
    DERIVED.register(_name)(_builder)

ENCODE_CHUNK = 4096
"""Texts encoded at once: a tokenizer's Python lists for a million texts take far more memory than their ids."""


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
    """Whether ``name`` is a source only a transfer set takes: a derived set, or a file of texts."""
    return name in DERIVED or name.partition(":")[0] == TEXT_FILE


def shares_one_view(source: str) -> bool:
    """Whether the transfer set ``source`` is one tensor that every model must read as it is (``mixup``
    mixes one view's inputs), so every stage must read the examples the same way."""
    return source in DERIVED and source not in FROM_TEXTS


class TransferSet:
    """A transfer set: fixed ``inputs`` (numbers, one encoding for every model), or raw ``texts`` that each
    view encodes with its own fitted encoder, once per encoder, the same examples in the same order."""

    def __init__(self, source: str, inputs: ArrayDataset | None = None, texts: list[str] | None = None):
        assert (inputs is None) != (texts is None), "a transfer set holds inputs or texts"
        self.source = source
        self.inputs = inputs
        self.texts = texts
        self._encoded: dict[int, tuple[object, ArrayDataset]] = {}

    def __len__(self) -> int:
        return len(self.texts) if self.texts is not None else len(self.inputs)  # type: ignore[arg-type]

    def for_data(self, data: DataBundle) -> ArrayDataset:
        """The transfer set as ``data``'s view reads it: its texts through that view's fitted encoder
        (its mask or unknown token for a masked word), shaped like the view's training inputs."""
        if self.texts is None:
            assert self.inputs is not None
            _check_shape(self.inputs, data)
            return self.inputs
        encoder = data.text_encoder
        if encoder is None:
            raise DataError(
                f"transfer set {self.source} holds texts but the labelled data does not; use numeric inputs"
            )
        if id(encoder) not in self._encoded:  # the encoder is kept beside it, so its id is never reused
            x = torch.as_tensor(encode_texts(encoder, self.texts))
            self._encoded[id(encoder)] = (encoder, _check_shape(ArrayDataset.unlabeled(x, like=data.train), data))
        return self._encoded[id(encoder)][1]


def encode_texts(encoder: Any, texts: list[str]) -> np.ndarray:
    """``texts`` through a fitted ``encoder``, :data:`ENCODE_CHUNK` at a time into one array."""
    mask = mask_word(encoder)
    out: np.ndarray | None = None
    for start in range(0, len(texts), ENCODE_CHUNK):
        part = encoder.transform(unmasked(texts[start : start + ENCODE_CHUNK], mask))
        if out is None:
            out = np.empty((len(texts), *part.shape[1:]), dtype=part.dtype)
        out[start : start + len(part)] = part
    assert out is not None, "a transfer set holds at least one text"
    return out


def _check_shape(inputs: ArrayDataset, data: DataBundle) -> ArrayDataset:
    if inputs.x.shape[1:] != data.train.x.shape[1:]:
        raise DataError(
            f"transfer set inputs have shape {tuple(inputs.x.shape[1:])}, the data's are {data.input_shape}"
        )
    return inputs


def build_transfer_set(
    source: str, options: dict, data: DataBundle, seed: int, limit: int | None = None
) -> TransferSet:
    """The transfer set a recipe names for the labelled ``data``: derived from its training inputs (seeded
    with ``seed``), the texts of another source when the data is text, or another source's inputs through
    the data's ``preprocess`` (feature columns, standardisation). At most ``limit`` examples; checked now
    against the view of ``data``, so a bad file or option costs no training."""
    refuse_streamed(data.train, "a transfer set")  # it is joined to the training inputs
    if source in DERIVED:
        builder = DERIVED.get(source)
        fields = signature_fields(builder, skip=("x", "texts", "seed"))
        options = check_options(f"transfer set {source!r}", fields, options, DataError)
        transfer = _derived(source, builder, options, data, seed, limit)
    elif data.text_encoder is not None:
        texts = unlabeled_texts(source, options, limit, data.preprocess.get("text_column"))
        transfer = TransferSet(source, texts=texts)
    else:
        transfer = TransferSet(source, inputs=load_unlabeled(source, options, limit, None, data.preprocess))
    transfer.for_data(data)
    return transfer


def _derived(source: str, builder: Callable, options: dict, data: DataBundle, seed: int, limit: int | None):
    """A derived transfer set: new texts from the raw training texts, or new inputs from the input tensors."""
    if source in FROM_TEXTS:
        if data.texts is None:
            raise DataError(
                f"transfer set {source!r} makes new texts of the training texts' words, and {data.source} gives "
                "numeric inputs; use mixup for numbers, or a text source"
            )
        texts = builder([str(t) for t in data.texts], seed, **options)
        return TransferSet(source, texts=texts[:limit] if limit else texts)
    if not data.train.x.is_floating_point():
        raise DataError(
            f"transfer set {source!r} mixes numeric inputs; token ids cannot be mixed (word_mask, word_delete or "
            "span_mix make new texts)"
        )
    x = builder(data.train.x, seed, **options)
    return TransferSet(source, inputs=ArrayDataset.unlabeled(x[:limit] if limit else x, like=data.train))
