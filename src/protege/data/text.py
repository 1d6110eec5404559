"""Text to model inputs, in one place: TF-IDF features for the builtin models, word ids of a vocabulary
fitted on the training texts for the text students (``fasttext``, ``textcnn``), or token ids from a
Hugging Face model's own tokenizer (see :class:`protege.models.hf.TokenizerEncoder`).

An encoder is fitted on the training texts only (the TF-IDF vocabulary, the word vocabulary, or the
padded length of ``padding: longest``) and then applied to every split, so nothing leaks from validation
or test.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from typing import Annotated, Protocol

import numpy as np
from pydantic import Field

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

    def mask_word(self) -> str:
        """A masked word has no TF-IDF feature (a bag of words has none for an unknown word): it is dropped."""
        return ""

    def describe(self) -> dict:
        vocabulary = {word: int(i) for word, i in self.vectorizer.vocabulary_.items()}
        settings = {
            "lowercase": self.vectorizer.lowercase,
            "token_pattern": self.vectorizer.token_pattern,
            "norm": self.vectorizer.norm,
            "sublinear_tf": self.vectorizer.sublinear_tf,
        }
        return {"tfidf": {"vocabulary": vocabulary, "idf": self.vectorizer.idf_.tolist(), **settings}}


MAX_LENGTH = 65536
"""The longest padded text (in tokens) a text option may ask for."""
MAX_WORDS = 2**22
"""The largest word vocabulary a text student may keep."""
WORD_PATTERN = r"(?u)\b\w+\b"
"""What a word is: a run of letters, digits or underscores (one-letter words count; punctuation does not)."""
PAD_ID, UNKNOWN_ID = 0, 1
"""The two ids before the words: padding, and a word the vocabulary does not hold."""


class WordIds:
    """Word ids from a vocabulary fitted on the training texts: the ``max_words`` most frequent words seen
    at least ``min_count`` times (ties by first appearance), numbered from 2 (0 pads, 1 is any other word);
    each text becomes its first ``max_length`` ids, padded with 0. With ``words`` the vocabulary is fixed
    (a saved model's), and fitting changes nothing."""

    reader: str | None = None
    """The model that reads these ids, named in errors (a text student)."""

    def __init__(
        self,
        max_length: Annotated[int, Field(ge=2, le=MAX_LENGTH)] = 256,
        max_words: Annotated[int, Field(ge=1, le=MAX_WORDS)] = 30000,
        min_count: Annotated[int, Field(ge=1)] = 1,
        lowercase: bool = True,
        words: list[str] | None = None,
    ):
        self.max_length = int(max_length)
        self.max_words = int(max_words)
        self.min_count = int(min_count)
        self.lowercase = bool(lowercase)
        self.fixed = words is not None
        self.ids = {word: i + 2 for i, word in enumerate(words or [])}
        self.pattern = re.compile(WORD_PATTERN)

    def words_of(self, text: str) -> list[str]:
        return self.pattern.findall(text.lower() if self.lowercase else text)

    def fit(self, texts: list[str]) -> None:
        if self.fixed:
            return
        counts = Counter(word for text in texts for word in self.words_of(text))
        kept = [word for word, n in counts.most_common() if n >= self.min_count][: self.max_words]
        if not kept:
            raise DataError("the text column gives no words to learn from")
        self.ids = {word: i + 2 for i, word in enumerate(kept)}

    def transform(self, texts: list[str]) -> np.ndarray:
        out = np.full((len(texts), self.max_length), PAD_ID, dtype=np.int64)
        for row, text in enumerate(texts):
            ids = [self.ids.get(word, UNKNOWN_ID) for word in self.words_of(text)[: self.max_length]]
            out[row, : len(ids)] = ids
        return out

    @property
    def vocab_size(self) -> int:
        return len(self.ids) + 2

    def mask_word(self) -> str:
        """A word the vocabulary does not hold, so a masked word reads as the unknown id."""
        word = "unk"
        while (word.lower() if self.lowercase else word) in self.ids:
            word += "_"
        return word

    def describe(self) -> dict:
        settings = {"max_length": self.max_length, "lowercase": self.lowercase, "token_pattern": WORD_PATTERN}
        sizes = {"vocab_size": self.vocab_size, "pad_id": PAD_ID, "unknown_id": UNKNOWN_ID}
        return {"word_ids": {"words": list(self.ids), **settings, **sizes}}

    def key(self) -> tuple:
        """What must match for two models to read the same ids: the vocabulary (a fixed one) or the settings
        it is fitted with (the same settings on the same training texts give the same vocabulary)."""
        if self.fixed:
            digest = hashlib.sha1(json.dumps(list(self.ids)).encode()).hexdigest()
            return "word_ids", digest, self.max_length, self.lowercase
        return "word_ids", self.max_length, self.max_words, self.min_count, self.lowercase

    @classmethod
    def described(cls, stored: dict) -> WordIds:
        """The encoder a saved model's ``word_ids`` preprocessing (:meth:`describe`) describes."""
        return cls(stored["max_length"], lowercase=stored.get("lowercase", True), words=list(stored["words"]))


def encode_splits(
    encoder: TextEncoder, train: np.ndarray, others: list[np.ndarray | None]
) -> tuple[np.ndarray, list[np.ndarray | None]]:
    """Fit ``encoder`` on the training texts, then encode the training split and every other split."""
    as_list = lambda a: [str(t) if t is not None else "" for t in a.tolist()]  # noqa: E731
    encoder.fit(as_list(train))
    return encoder.transform(as_list(train)), [encoder.transform(as_list(a)) if a is not None else None for a in others]
