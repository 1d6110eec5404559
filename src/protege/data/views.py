"""Each model's view of the same examples: the examples are split once (with the recipe's seed) and every
model reads them through its own encoder (a Hugging Face model its own tokenizer, a builtin model TF-IDF
fitted on the training texts). Example i is the same text in every view, so a teacher's outputs, cached
by example index, line up with the student's batches whatever each reads."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence

import torch

from protege.data.build import SplitExamples, encode_examples
from protege.data.dataset import ArrayDataset, DataBundle
from protege.data.streamed import StreamedImages
from protege.data.text import TextEncoder
from protege.errors import DataError

TEACHER_INPUTS = "teacher_x"
"""The batch key of the teacher's inputs, when the teacher reads the examples through another view."""

EncoderOf = Callable[[str, dict], TextEncoder | None]
"""(model source, its options) -> the encoder its view needs, or None for the default (TF-IDF, numbers)."""


def encoder_key(encoder: TextEncoder | None) -> tuple:
    """What must match for two models to share one view: the tokenizer's key, or the default encoding."""
    key = getattr(encoder, "key", None)
    return ("default",) if encoder is None else ("encoder", *(key() if callable(key) else (id(encoder),)))


class Views:
    """The split examples and each model's encoding of them, made on first use and shared by every model
    with the same encoder (two stages reading the same tokenizer share one set of tensors)."""

    def __init__(self, examples: SplitExamples, encoder_of: EncoderOf):
        self.examples = examples
        self.encoder_of = encoder_of
        self._bundles: dict[tuple, DataBundle] = {}
        self._keys: dict[str, tuple] = {}

    def for_model(self, source: str, options: dict) -> DataBundle:
        """The view ``source`` (with its recipe ``options``) reads: the examples through its encoder."""
        model = json.dumps([source, options], sort_keys=True, default=str)
        if model not in self._keys:
            encoder = self.encoder_of(source, options)
            key = encoder_key(encoder)
            if key not in self._bundles:
                self._bundles[key] = encode_examples(self.examples, encoder)
            self._keys[model] = key
        return self._bundles[self._keys[model]]

    def __len__(self) -> int:
        """How many different views were made so far."""
        return len(self._bundles)


def check_same_examples(first: DataBundle, other: DataBundle, who: str) -> None:
    """Refuse a view (``other``) that cannot be the student's examples (``first``): other classes, or
    other split sizes."""
    if list(first.class_names) != list(other.class_names):
        raise DataError(
            f"{who} has the classes {', '.join(other.class_names)} and the student's "
            f"{', '.join(first.class_names)}; teacher and student must read the same examples"
        )
    if first.sizes() != other.sizes():
        raise DataError(
            f"{who} holds {_sizes(other)} examples and the student's {_sizes(first)}; teacher and student "
            "must read the same examples"
        )


def _sizes(data: DataBundle) -> str:
    return " / ".join(f"{split} {n}" for split, n in data.sizes().items())


class ViewedDataset(ArrayDataset):
    """The student's examples with the teacher's encoding of each beside it: batches carry the teacher's
    inputs under ``teacher_x``, and the teacher cache is computed on :meth:`teacher_view`."""

    def __init__(self, student: ArrayDataset, teacher_x: torch.Tensor):
        super().__init__(student.x, student.y, student.labeled)
        self.teacher_x = teacher_x

    def teacher_view(self) -> ArrayDataset:
        """The same examples, in the same order, as the teacher reads them."""
        return ArrayDataset(self.teacher_x, self.y, self.labeled)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {**super().__getitem__(i), TEACHER_INPUTS: self.teacher_x[i]}

    def __getitems__(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        batch = super().__getitems__(indices)
        batch[TEACHER_INPUTS] = self.teacher_x.index_select(0, batch["index"])
        return batch

    def fingerprint(self) -> str:
        """Both encodings: another teacher view is other data for the cache and for resume."""
        digest = hashlib.sha1(super().fingerprint().encode())
        digest.update(str(tuple(self.teacher_x.shape)).encode())
        digest.update(self.teacher_x.contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]


def with_teacher_view(student: ArrayDataset, teacher: ArrayDataset, who: str) -> ArrayDataset:
    """The student's training set with the teacher's inputs for each example; as it is when both read the
    examples the same way. Another number of examples, or other targets, cannot be the same examples."""
    if teacher is student:
        return student
    if isinstance(student, StreamedImages) or isinstance(teacher, StreamedImages):
        raise DataError(
            f"{who} reads the images at another size or crop than the student, and a streamed image folder "
            "serves one view; give both models the same model.options.preprocess, or set data.options.load: memory"
        )
    if len(teacher) != len(student):
        raise DataError(
            f"{who} reads {len(teacher)} training examples and the student {len(student)}; teacher and student "
            "must read the same examples"
        )
    if not torch.equal(teacher.y, student.y):
        raise DataError(f"{who} reads the training examples with other targets; the two are not the same examples")
    return ViewedDataset(student, teacher.x)


def teacher_view(dataset: object) -> object:
    """What the teacher reads of a training set: its own view of a :class:`ViewedDataset`, else the set itself."""
    return dataset.teacher_view() if isinstance(dataset, ViewedDataset) else dataset
