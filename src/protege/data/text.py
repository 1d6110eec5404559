"""Text to model inputs, in one place: TF-IDF features for the builtin models, or token ids from a
Hugging Face model's own tokenizer (see :class:`protege.models.hf.TokenizerEncoder`).

An encoder is fitted on the training texts only (the TF-IDF vocabulary, or the padded length of
``padding: longest``) and then applied to every split, so nothing leaks from validation or test.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from protege.errors import DataError


class TextEncoder(Protocol):
    """Turns lists of texts into one fixed-shape array per example."""

    def fit(self, texts: list[str]) -> None: ...

    def transform(self, texts: list[str]) -> np.ndarray: ...

    def describe(self) -> dict:
        """What a saved model needs to encode new texts the same way (goes into ``model.json``)."""
        ...


def is_text(x: np.ndarray) -> bool:
    """Whether a source handed over raw strings rather than numbers."""
    return x.dtype.kind in "OUS"


class TfidfEncoder:
    """TF-IDF features (scikit-learn) with at most ``max_features`` words, fitted on the training texts."""

    def __init__(self, max_features: int = 2000):
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.vectorizer = TfidfVectorizer(max_features=max_features)

    def fit(self, texts: list[str]) -> None:
        try:
            self.vectorizer.fit(texts)
        except ValueError as exc:
            raise DataError(f"the text column gives no words to learn from ({exc})") from None

    def transform(self, texts: list[str]) -> np.ndarray:
        return self.vectorizer.transform(texts).toarray().astype(np.float32)

    def describe(self) -> dict:
        vocabulary = {word: int(i) for word, i in self.vectorizer.vocabulary_.items()}
        settings = {
            "lowercase": self.vectorizer.lowercase,
            "token_pattern": self.vectorizer.token_pattern,
            "norm": self.vectorizer.norm,
            "sublinear_tf": self.vectorizer.sublinear_tf,
        }
        return {"tfidf": {"vocabulary": vocabulary, "idf": self.vectorizer.idf_.tolist(), **settings}}


def encode_splits(
    encoder: TextEncoder, train: np.ndarray, others: list[np.ndarray | None]
) -> tuple[np.ndarray, list[np.ndarray | None]]:
    """Fit ``encoder`` on the training texts, then encode the training split and every other split."""
    as_list = lambda a: [str(t) if t is not None else "" for t in a.tolist()]  # noqa: E731
    encoder.fit(as_list(train))
    return encoder.transform(as_list(train)), [encoder.transform(as_list(a)) if a is not None else None for a in others]
