"""A saved model's input pipeline replayed at prediction time: the card's feature columns in their
stored order, TF-IDF with the stored vocabulary and idf, token ids with the saved tokenizer or a text
student's stored word vocabulary, standardisation with the stored mean and std, and an image model's
resize and centre crop (protege.models.image_inputs; the model applies its mean/std itself).

Raw inputs (CSV rows, texts, arrays) become exactly the tensors the model saw in training.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from protege.errors import DataError, ModelError, did_you_mean
from protege.models.image_inputs import ModelInput
from protege.models.store import ModelCard

KNOWN_STEPS = ("features", "tfidf", "standardize", "image", "model_input", "tokenizer", "word_ids", "text_column")


class Preprocessor:
    """Turns raw inputs into model inputs of shape ``(N, *input_shape)``, float32."""

    def __init__(
        self,
        card: ModelCard,
        model_dir: Path | None = None,
        *,
        files: dict[str, str] | None = None,
        trust_remote_code: bool = False,
    ):
        """``model_dir`` (a saved model) or ``files`` (those an exported file carries) hold a text model's
        tokenizer; ``trust_remote_code`` is the user's permission for code those files name."""
        unknown = [step for step in card.preprocess if step not in KNOWN_STEPS]
        if unknown:
            raise ModelError(
                f"the model needs preprocessing step {unknown[0]!r}, which this protege cannot apply; upgrade protege"
            )
        self.input_shape = tuple(int(n) for n in card.input_shape)
        self.features: list[str] | None = card.preprocess.get("features")
        self.tfidf: dict | None = card.preprocess.get("tfidf")
        self.image: dict | None = card.preprocess.get("image")
        stored = card.preprocess.get("model_input")
        self.model_input = ModelInput.from_card(stored) if stored is not None else None
        self.tokenizer: dict | None = card.preprocess.get("tokenizer")
        self.word_ids: dict | None = card.preprocess.get("word_ids")
        self.text_column: str | None = card.preprocess.get("text_column") or (self.tfidf or {}).get("column")
        self.model_dir = model_dir
        self.files = files
        self.trust_remote_code = trust_remote_code
        self._tokens = None
        self._vectorizer = None
        standardize = card.preprocess.get("standardize")
        self.mean = self.std = None
        if standardize is not None:
            self.mean = np.asarray(standardize["mean"], dtype=np.float32).reshape(self.input_shape)
            self.std = np.asarray(standardize["std"], dtype=np.float32).reshape(self.input_shape)

    @property
    def takes_text(self) -> bool:
        return self.tfidf is not None or self.reads_ids

    @property
    def reads_ids(self) -> bool:
        """Whether the model reads token ids (a tokenizer's, or a text student's word ids)."""
        return self.tokenizer is not None or self.word_ids is not None

    @property
    def values_per_input(self) -> int:
        return math.prod(self.input_shape)

    def describe(self) -> str:
        """What one input of this model is, for error messages."""
        if self.takes_text:
            return "text"
        if self.features is not None:
            return f"{len(self.features)} numeric columns ({', '.join(self.features[:8])})"
        if self.image is not None:
            height, width = self.image["size"]
            then = f", then to the model's {self.model_input.describe()}" if self.model_input is not None else ""
            return (
                f"{self.image['mode']} images (resized to {width}×{height}{then}) or arrays of shape {self.input_shape}"
            )
        return f"arrays of shape {self.input_shape}"

    @property
    def takes_images(self) -> bool:
        return self.image is not None

    def from_image_file(self, file: Path) -> np.ndarray:
        """An image file read as in training: same colour mode, resized to the training size, then resized and
        cropped to the model's input images where its pretrained configuration asks (the model normalises)."""
        from protege.data.images import load_image

        if not self.takes_images:
            raise DataError(f"{file}: image inputs need an image model; this model takes {self.describe()}")
        pixels = load_image(file, tuple(self.image["size"]), self.image["mode"])
        if self.model_input is not None:
            pixels = self.model_input.resize_array(pixels[None])[0]
        return self.from_array(pixels, str(file))

    def from_texts(self, texts: Sequence[str], origin: str) -> np.ndarray:
        """``texts`` as the model read them in training: TF-IDF features with the stored vocabulary and idf,
        or token ids (the saved tokenizer, or a text student's stored word vocabulary)."""
        if not self.takes_text:
            raise DataError(f"{origin}: text inputs need a text model; this model takes {self.describe()}")
        return self._finish(self._vectorize(texts))

    def from_rows(self, rows: Sequence[Mapping[str, str]], columns: Sequence[str], origin: str) -> np.ndarray:
        """CSV rows (dicts keyed by the header): the text column, the stored feature columns in their
        stored order, or, for a model without named columns, every column as one flattened input."""
        if self.takes_text:
            column = self._text_column(columns, origin)
            return self._finish(self._vectorize([row[column] or "" for row in rows]))
        names = self.features
        if names is not None:
            missing = [name for name in names if name not in columns]
            if missing:
                raise DataError(
                    f"{origin}: no column {missing[0]!r}{did_you_mean(missing[0], columns)}; "
                    f"the model needs columns {', '.join(names)}"
                )
        else:
            names = list(columns)
            if len(names) != self.values_per_input:
                raise DataError(
                    f"{origin}: wrong number of features: {len(names)} columns, the model takes "
                    f"{self.values_per_input} values per input (shape {self.input_shape})"
                )
        x = np.empty((len(rows), len(names)), dtype=np.float32)
        for i, row in enumerate(rows):
            for j, name in enumerate(names):
                try:
                    x[i, j] = float(row[name])
                except (TypeError, ValueError):
                    raise DataError(f"{origin}: line {i + 2}, column {name!r}: {row[name]!r} is not a number") from None
        return self.from_array(x, origin)

    def from_array(self, array: np.ndarray, origin: str) -> np.ndarray:
        """Raw numeric inputs: ``(N, *input_shape)``, one input of ``input_shape``, or ``(N, values)``
        flattened; for a text model, TF-IDF vectors already computed."""
        a = np.asarray(array)
        if not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_) or np.iscomplexobj(a):
            raise DataError(f"{origin}: inputs are {a.dtype}, not real numbers")
        if a.shape == self.input_shape:
            a = a[None]
        elif a.ndim == 2 and a.shape[1] == self.values_per_input:
            a = a.reshape(len(a), *self.input_shape)
        elif a.shape[1:] != self.input_shape:
            if len(self.input_shape) == 1 and a.ndim == 2:
                raise DataError(
                    f"{origin}: wrong number of features: {a.shape[1]}, the model takes {self.input_shape[0]}"
                )
            raise DataError(
                f"{origin}: inputs of shape {a.shape} do not fit the model, which takes {self.input_shape} "
                f"per input; give an array of shape (N, {', '.join(map(str, self.input_shape))})"
            )
        if len(a) == 0:
            raise DataError(f"{origin}: no inputs")
        with np.errstate(over="ignore"):  # values beyond float32 become inf, refused just below
            a = a.astype(np.float32)
        if not np.isfinite(a).all():
            row = int(np.argwhere(~np.isfinite(a.reshape(len(a), -1)))[0][0])
            raise DataError(f"{origin}: input {row} holds NaN or infinite values, or values beyond a 32-bit float")
        return self._finish(a)

    def _token_ids(self, texts: Sequence[str]) -> np.ndarray:
        if self._tokens is None and self.word_ids is not None:
            from protege.data.text import WordIds

            self._tokens = WordIds.described(self.word_ids)
        if self._tokens is None:
            self._tokens = _rebuild_tokens(self.tokenizer or {}, self.model_dir, self.files, self.trust_remote_code)
        return np.ascontiguousarray(self._tokens.transform(list(texts)), dtype=np.int64)

    def _finish(self, x: np.ndarray) -> np.ndarray:
        if x.dtype.kind in "iu" and self.reads_ids:
            return np.ascontiguousarray(x.reshape(len(x), *self.input_shape), dtype=np.int64)
        x = x.reshape(len(x), *self.input_shape)
        if self.mean is not None:
            x = (x - self.mean) / self.std
        return np.ascontiguousarray(x, dtype=np.float32)

    def _text_column(self, columns: Sequence[str], origin: str) -> str:
        """The column the model read text from in training; cards older than that record use the only
        column, or one named ``text``."""
        column = self.text_column
        if column is None:
            if len(columns) == 1:
                return columns[0]
            column = "text"
        if column not in columns:
            raise DataError(
                f"{origin}: no column {column!r}, where the model reads its text{did_you_mean(column, columns)}; "
                f"columns: {', '.join(columns)}"
            )
        return column

    def _vectorize(self, texts: Sequence[str]) -> np.ndarray:
        if self.reads_ids:
            return self._token_ids(texts)
        if self._vectorizer is None:
            self._vectorizer = _rebuild_tfidf(self.tfidf or {})
        return self._vectorizer.transform(list(texts)).toarray().astype(np.float32)


def _rebuild_tokens(settings: dict, model_dir: Path | None, files: dict[str, str] | None, trust: bool):
    """The Hugging Face tokenizer a text model was trained with: the files saved beside its weights, those
    an exported file carries, or (a file exported before exports carried them) its ``hf:`` source."""
    from protege.models import resolve_run_path
    from protege.models.hf import TokenizerEncoder, load_tokenizer, tokenizer_from_files

    source = settings["source"]
    if model_dir is not None:
        tokenizer = load_tokenizer(str(model_dir), trust, what=f"run:{model_dir}")
    elif files:
        tokenizer = tokenizer_from_files(files, "the exported model", trust)
    else:
        kind, _, rest = source.partition(":")
        try:
            tokenizer = load_tokenizer(str(resolve_run_path(source)) if kind == "run" else rest, trust, what=source)
        except ModelError as exc:
            raise ModelError(
                f"the exported model carries no tokenizer and its training source cannot be loaded ({exc}); "
                f"export it again with this protege, which puts the tokenizer in the file"
            ) from None
    return TokenizerEncoder(tokenizer, source, settings["max_length"], "max_length", settings["truncation"])


def _rebuild_tfidf(stored: dict):
    """A fitted TfidfVectorizer from the stored vocabulary, idf weights and tokenizer settings (the
    sklearn defaults the training used, for cards that predate the settings)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(
        vocabulary=stored["vocabulary"],
        lowercase=stored.get("lowercase", True),
        token_pattern=stored.get("token_pattern", r"(?u)\b\w\w+\b"),
        norm=stored.get("norm", "l2"),
        sublinear_tf=stored.get("sublinear_tf", False),
    )
    vectorizer.idf_ = np.asarray(stored["idf"], dtype=np.float64)
    return vectorizer
