"""Text augmentation for distillation: new texts made from the training texts' words, for the teacher to
label, so a student learns the teacher's function on many more inputs than the labelled set holds (as
TinyBERT's and DistilBERT-era data augmentation, Jiao et al. 2020; Shen et al. 2020 mix spans of texts).

They work on raw texts, before any model's encoder, so every view (a tokenizer, a word vocabulary, TF-IDF)
reads the same augmented examples. A word is a run of characters between spaces; a masked word is the
placeholder :data:`MASK`, which each encoder reads as its own mask or unknown token (:func:`mask_word`).
Each function is seeded: the same texts and seed give the same set, so the teacher cache stays exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import numpy as np
from pydantic import Field

MASK = "\ue000"
"""The word that stands for a masked word until an encoder reads the text (a private-use character)."""

Samples = Annotated[int, Field(ge=1, le=1_000_000)]
Probability = Annotated[float, Field(gt=0, lt=1)]


def mask_word(encoder: object) -> str:
    """What a masked word becomes for ``encoder``: its own ``mask_word()`` (a tokenizer's mask token, a
    word the vocabulary lacks), or nothing (the word dropped) for an encoder that has none."""
    own = getattr(encoder, "mask_word", None)
    return own() if callable(own) else ""


def unmasked(texts: Sequence[str], mask: str) -> list[str]:
    """``texts`` with every masked word written as ``mask``."""
    return [text.replace(MASK, mask) if MASK in text else text for text in texts]


def _picked(texts: Sequence[str], rng: np.random.Generator, num_samples: int) -> list[list[str]]:
    """The words of ``num_samples`` training texts drawn uniformly, with replacement."""
    return [str(texts[i]).split() for i in rng.integers(len(texts), size=num_samples)]


def word_mask(
    texts: Sequence[str], seed: int, num_samples: Samples = 10000, probability: Probability = 0.15
) -> list[str]:
    """``num_samples`` training texts, each word replaced by the mask with ``probability`` (BERT's masking,
    without the random and kept words)."""
    rng = np.random.default_rng(seed)
    out = []
    for words in _picked(texts, rng, num_samples):
        masked = rng.random(len(words)) < probability
        out.append(" ".join(MASK if hit else word for word, hit in zip(words, masked, strict=True)))
    return out


def word_delete(
    texts: Sequence[str], seed: int, num_samples: Samples = 10000, probability: Probability = 0.15
) -> list[str]:
    """``num_samples`` training texts, each word deleted with ``probability``; a text that would lose every
    word keeps one of them, drawn uniformly."""
    rng = np.random.default_rng(seed)
    out = []
    for words in _picked(texts, rng, num_samples):
        kept = rng.random(len(words)) >= probability
        if words and not kept.any():
            kept[rng.integers(len(words))] = True
        out.append(" ".join(word for word, keep in zip(words, kept, strict=True) if keep))
    return out


def span_mix(
    texts: Sequence[str],
    seed: int,
    num_samples: Samples = 10000,
    fraction: Annotated[float, Field(gt=0, lt=1)] = 0.3,
) -> list[str]:
    """``num_samples`` pairs of different training texts (a, b): a span of ``fraction`` of a's words, at a
    uniform position, replaced by a span of ``fraction`` of b's words (at least one word of each; a text of
    two words or more keeps one of its own): CutMix on the words of two texts."""
    rng = np.random.default_rng(seed)
    n = len(texts)
    first = rng.integers(n, size=num_samples)
    second = (first + rng.integers(1, n, size=num_samples)) % n if n > 1 else first
    out = []
    for i, j in zip(first.tolist(), second.tolist(), strict=True):
        a, b = str(texts[i]).split(), str(texts[j]).split()
        cut, taken = _span(len(a), fraction, len(a) - 1), _span(len(b), fraction, len(b))
        start = int(rng.integers(len(a) - cut + 1))
        source = int(rng.integers(len(b) - taken + 1))
        out.append(" ".join([*a[:start], *b[source : source + taken], *a[start + cut :]]))
    return out


def _span(words: int, fraction: float, most: int) -> int:
    """``fraction`` of ``words`` words, rounded, between one and ``most`` (and at least one); none of none."""
    return min(max(1, round(fraction * words)), max(most, 1)) if words else 0
