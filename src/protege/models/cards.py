"""What a model card (``model.json``, or the card inside an exported file) may say, checked wherever a card
is read: the types of its fields, sizes that fit in memory, and preprocessing a model can replay.

A hand-edited or damaged card is refused in one line naming the field, before anything is allocated.
Keys this protege does not know are left alone (a newer card may carry more), and the architecture's
own options are checked where a model is built from the card (``protege.models.builtin_from_card``).
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError, model_validator

from protege.errors import CheckpointError
from protege.options import MAX_INPUT_VALUES, MAX_SIDE, ImageMode

Side = Annotated[StrictInt, Field(ge=1, le=MAX_SIDE)]


class _Block(BaseModel):
    """A part of the card: JSON types as written (no coercion), unknown keys tolerated."""

    model_config = ConfigDict(strict=True, extra="allow")


class _Standardize(_Block):
    mean: list[Any]
    std: list[Any]


class _Image(_Block):
    size: Annotated[list[Side], Field(min_length=2, max_length=2)]
    mode: ImageMode


class _ModelInput(_Block):
    size: Annotated[list[Side], Field(min_length=2, max_length=2)]
    interpolation: Literal["nearest", "bilinear", "bicubic"]
    crop_pct: Annotated[float, Field(gt=0, le=1)]
    mean: Annotated[list[float], Field(min_length=1, max_length=4)] | None = None
    std: Annotated[list[Annotated[float, Field(gt=0)]], Field(min_length=1, max_length=4)] | None = None
    origin: StrictStr = ""


class _Tfidf(_Block):
    vocabulary: dict[str, StrictInt]
    idf: list[float]
    lowercase: StrictBool = True
    token_pattern: StrictStr = r"(?u)\b\w\w+\b"
    norm: Literal["l1", "l2"] | None = "l2"
    sublinear_tf: StrictBool = False
    column: StrictStr | None = None


class _Tokenizer(_Block):
    source: StrictStr
    max_length: Annotated[StrictInt, Field(ge=2, le=MAX_INPUT_VALUES)]
    truncation: StrictBool | StrictStr = True
    vocab_size: Annotated[StrictInt, Field(ge=1)] | None = None
    pad_id: Annotated[StrictInt, Field(ge=0)] | None = None


class _WordIds(_Block):
    words: list[StrictStr]
    max_length: Annotated[StrictInt, Field(ge=2, le=MAX_INPUT_VALUES)]
    lowercase: StrictBool = True
    token_pattern: StrictStr
    vocab_size: Annotated[StrictInt, Field(ge=2)]
    pad_id: Literal[0]
    unknown_id: Literal[1]


class _Preprocess(_Block):
    features: list[StrictStr] | None = None
    text_column: StrictStr | None = None
    standardize: _Standardize | None = None
    image: _Image | None = None
    model_input: _ModelInput | None = None
    tfidf: _Tfidf | None = None
    tokenizer: _Tokenizer | None = None
    word_ids: _WordIds | None = None


class _Task(_Block):
    name: Annotated[StrictStr, Field(min_length=1)]
    type: Literal["classification", "multilabel", "regression"]
    names: Annotated[list[StrictStr], Field(min_length=1)]
    target_start: Annotated[StrictInt, Field(ge=0)]


class _Card(_Block):
    architecture: Annotated[StrictStr, Field(min_length=1)]
    options: dict[str, Any]
    input_shape: Annotated[list[Annotated[StrictInt, Field(ge=1)]], Field(min_length=1, max_length=4)]
    class_names: Annotated[list[StrictStr], Field(min_length=1)]
    preprocess: _Preprocess = Field(default_factory=_Preprocess)
    metrics: dict[str, Any] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict)
    tasks: list[_Task] = Field(default_factory=list)

    @model_validator(mode="after")
    def _sizes_fit(self) -> _Card:
        values = math.prod(self.input_shape)
        if values > MAX_INPUT_VALUES:
            raise ValueError(f"input_shape {self.input_shape} holds {values:,} values, at most {MAX_INPUT_VALUES:,}")
        if len(set(self.class_names)) != len(self.class_names):
            raise ValueError("class_names holds a name twice")
        task = self.data.get("task", "classification")
        if task not in ("classification", "multilabel", "regression", "multitask"):
            raise ValueError(
                f"data.task {task!r} is not a task type (classification, multilabel, regression, multitask)"
            )
        if self.tasks and sum(len(t.names) for t in self.tasks) != len(self.class_names):
            raise ValueError(f"tasks name {sum(len(t.names) for t in self.tasks)} outputs, class_names "
                             f"{len(self.class_names)}")  # fmt: skip
        if task == "classification" and len(self.class_names) < 2:
            raise ValueError(f"class_names {self.class_names}: a classifier has at least two classes")
        _check_preprocess(self.preprocess, values)
        _check_model_input(self.preprocess.model_input, self.input_shape)
        return self


def _check_preprocess(steps: _Preprocess, values: int) -> None:
    """Preprocessing that agrees with the input size, so replaying it can only give the model's inputs."""
    if steps.features is not None and len(steps.features) != values:
        raise ValueError(f"preprocess.features names {len(steps.features)} columns for inputs of {values} values")
    if steps.standardize is not None:
        for name in ("mean", "std"):
            try:
                array = np.asarray(getattr(steps.standardize, name), dtype=np.float64)
            except (TypeError, ValueError, OverflowError):
                raise ValueError(f"preprocess.standardize.{name} is not an array of numbers") from None
            if array.size != values or not np.isfinite(array).all() or (name == "std" and (array <= 0).any()):
                raise ValueError(f"preprocess.standardize.{name} is not {values} finite numbers (std above 0)")
    if steps.tfidf is not None:
        tfidf = steps.tfidf
        if sorted(tfidf.vocabulary.values()) != list(range(len(tfidf.vocabulary))) or len(tfidf.idf) != values:
            raise ValueError(f"preprocess.tfidf: vocabulary and idf must number the {values} features 0..{values - 1}")
        if not all(math.isfinite(w) for w in tfidf.idf):
            raise ValueError("preprocess.tfidf.idf holds a value that is not finite")
        try:
            re.compile(tfidf.token_pattern)
        except re.error as exc:
            raise ValueError(f"preprocess.tfidf.token_pattern is not a regular expression ({exc})") from None
    if steps.word_ids is not None:
        _check_word_ids(steps.word_ids, values)
    sizes = (steps.tokenizer.vocab_size, steps.tokenizer.pad_id or 0) if steps.tokenizer is not None else (None, 0)
    if sizes[0] is not None and not sizes[1] < sizes[0]:
        raise ValueError("preprocess.tokenizer.pad_id is not one of its vocab_size ids")


def _check_model_input(view: _ModelInput | None, input_shape: list[int]) -> None:
    """Input images that are the model's inputs: its size, and one mean and std (finite) per channel."""
    if view is None:
        return
    if len(input_shape) != 3 or list(view.size) != list(input_shape[1:]):
        raise ValueError(f"preprocess.model_input.size {view.size} is not the size of the inputs {input_shape}")
    if (view.mean is None) != (view.std is None):
        raise ValueError("preprocess.model_input: mean and std come together")
    for name in ("mean", "std"):
        values = getattr(view, name)
        if values is not None and (len(values) != input_shape[0] or not all(math.isfinite(v) for v in values)):
            raise ValueError(f"preprocess.model_input.{name} is not {input_shape[0]} finite numbers, one per channel")


def _check_word_ids(word_ids: _WordIds, values: int) -> None:
    """A text student's vocabulary: distinct words numbered from 2, one id per input value."""
    from protege.data.text import WORD_PATTERN

    if word_ids.vocab_size != len(word_ids.words) + 2 or len(set(word_ids.words)) != len(word_ids.words):
        raise ValueError("preprocess.word_ids: vocab_size must be the number of distinct words plus 2")
    if word_ids.max_length != values:
        raise ValueError(f"preprocess.word_ids.max_length is {word_ids.max_length}, the inputs hold {values} ids")
    if word_ids.token_pattern != WORD_PATTERN:
        raise ValueError(f"preprocess.word_ids.token_pattern must be {WORD_PATTERN!r}, the one protege splits words by")


def check_card(meta: dict, origin: str) -> None:
    """Refuse a card whose fields have the wrong types or sizes, in one line naming ``origin`` and the field."""
    try:
        _Card.model_validate(meta)
    except ValidationError as exc:
        raise CheckpointError(f"{origin}: {_describe(exc)}") from None


def _describe(exc: ValidationError) -> str:
    error = min(exc.errors(), key=lambda e: (e["type"].endswith("_type"), -len(e["loc"])))
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"]).lstrip(".")
    message = error["msg"].removeprefix("Value error, ")
    given = error.get("input")
    shown = "" if error["type"] in ("missing", "value_error") or isinstance(given, dict) else f" (got {given!r:.60})"
    return f"{where + ': ' if where else ''}{message}{shown}; the card was edited or damaged"
