"""``protege predict``: the top classes and their probabilities for inputs read from files, from a run,
a model directory, or an exported ``.onnx``/``.pt``/``.safetensors`` file.

Inputs get the preprocessing the model was trained with (see :mod:`protege.preprocess`). Nothing a
user hands over is unpickled: arrays are read with ``allow_pickle=False``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from protege.console import out_console
from protege.data.images import IMAGE_SUFFIXES
from protege.data.sources import read_csv_rows
from protege.errors import ConfigError, DataError, ModelError
from protege.export import input_dtype, read_exported, torch_runtime
from protege.files import read_text
from protege.models import load_run_model, resolve_run_path
from protege.models.compatibility import check_task_free
from protege.models.store import ModelCard
from protege.preprocess import Preprocessor

BATCH_SIZE = 256
TEXT_SUFFIXES = (".txt", ".text")


@dataclass
class Prediction:
    """What a model says of one input: the ``top_k`` classes (or labels) with their probabilities, most
    probable first; for a multi-label model also every label it predicts (probability at least 0.5); for a
    regression model the value of each target instead."""

    input: str
    classes: list[str]
    probabilities: list[float]
    labels: list[str] | None = None
    values: dict[str, float] | None = None
    tasks: dict[str, object] | None = None
    """A multi-head model's prediction per task (protege.multitask.predictions)."""

    def to_json(self) -> dict:
        if self.tasks is not None:
            return {"input": self.input, "tasks": self.tasks}
        if self.values is not None:
            return {"input": self.input, "values": self.values}
        ranked = [{"class": c, "probability": p} for c, p in zip(self.classes, self.probabilities, strict=True)]
        out: dict = {"input": self.input, "predictions": ranked}
        if self.labels is not None:
            out["labels"] = self.labels
        return out


@dataclass
class Predictor:
    """A loaded model in any runtime, with the preprocessing of its card."""

    card: ModelCard
    runtime: str
    logits: Callable[[np.ndarray], np.ndarray]
    preprocessor: Preprocessor

    @property
    def task(self) -> str:
        """What the outputs are (protege.tasks), as the card's training data says (older cards: classes)."""
        return self.card.data.get("task", "classification")

    def probabilities(self, x: np.ndarray, names: Sequence[str] | None = None) -> np.ndarray:
        """What the model gives for preprocessed inputs ``x``, batch by batch: class probabilities (softmax),
        label probabilities (sigmoid) or the predicted values. A model with another number of outputs than
        its card names, or outputs that are not finite, is an error (never a table of wrong or NaN values)."""
        parts = [self.logits(x[i : i + BATCH_SIZE]) for i in range(0, len(x), BATCH_SIZE)]
        logits = np.concatenate(parts).astype(np.float64)
        if logits.ndim != 2 or logits.shape[1] != self.card.num_classes:
            raise ModelError(
                f"the model gives outputs of shape {logits.shape[1:]} but its card names {self.card.num_classes} "
                "classes; the file was changed after export: export it again"
            )
        broken = ~np.isfinite(logits).all(axis=1)
        if broken.any():
            first = int(np.argmax(broken))
            which = names[first] if names is not None else f"input {first}"
            raise ModelError(
                f"the model gives non-finite outputs (NaN or infinity) for {which} and {int(broken.sum()) - 1} "
                "other input(s): its weights are broken, or those inputs are far outside what it was trained on"
            )
        if self.task in ("regression", "multitask"):  # a multi-head model's tasks read their own outputs
            return logits
        if self.task == "multilabel":
            return 1.0 / (1.0 + np.exp(-logits))
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)


def load_predictor(model: str | Path, trust_remote_code: bool = False) -> Predictor:
    """A run or model directory (``run:`` optional) runs in PyTorch; an exported file in its own runtime.
    A text model reads texts with the tokenizer saved beside it or carried in the file; ``trust_remote_code``
    is the user's permission for code a Hugging Face model's files name."""
    path = Path(str(model).removeprefix("run:")).expanduser()
    if path.is_dir():
        built = load_run_model(f"run:{path}", None, None, trust_remote_code)
        model_dir = resolve_run_path(f"run:{path}")
        check_task_free(built.card, f"model {model_dir}")
        preprocessor = Preprocessor(built.card, model_dir, trust_remote_code=trust_remote_code)
        return Predictor(
            built.card, "pytorch", torch_runtime(built.module.eval(), input_dtype(built.card)), preprocessor
        )
    if path.is_file():
        exported = read_exported(path, trust_remote_code)
        preprocessor = Preprocessor(exported.card, files=exported.files, trust_remote_code=trust_remote_code)
        return Predictor(exported.card, exported.runtime, exported.logits, preprocessor)
    raise ModelError(f"model not found: {path} (give a run directory, a model directory or an exported file)")


def read_inputs(path: Path, preprocessor: Preprocessor) -> tuple[list[str], np.ndarray]:
    """Names and preprocessed model inputs for every input in ``path``, chosen by its suffix."""
    if not path.is_file():
        raise DataError(f"input file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path, preprocessor)
    if suffix in TEXT_SUFFIXES:
        return _read_text(path, preprocessor)
    if suffix in IMAGE_SUFFIXES:
        return [path.name], preprocessor.from_image_file(path)
    if suffix in (".npy", ".npz"):
        array = _read_array(path)
        x = preprocessor.from_array(array, str(path))
        return [f"{path.name}[{i}]" for i in range(len(x))], x
    raise DataError(
        f"{path}: unknown input type {suffix or '(no suffix)'!r}; give .csv, .txt, .npy, .npz or image files"
    )


def _read_csv(path: Path, preprocessor: Preprocessor) -> tuple[list[str], np.ndarray]:
    columns, rows = read_csv_rows(path)
    x = preprocessor.from_rows(rows, columns, str(path))
    return [f"{path.name}:{i + 2}" for i in range(len(rows))], x


def _read_text(path: Path, preprocessor: Preprocessor) -> tuple[list[str], np.ndarray]:
    """One text per non-blank line; the names carry the line numbers."""
    lines = read_text(path, DataError).splitlines()
    kept = [(i + 1, line) for i, line in enumerate(lines) if line.strip()]
    if not kept:
        raise DataError(f"{path}: no text lines")
    x = preprocessor.from_texts([line for _, line in kept], str(path))
    return [f"{path.name}:{n}" for n, _ in kept], x


def _read_array(path: Path) -> np.ndarray:
    """The array of a ``.npy``, or the ``x`` (or only) array of a ``.npz``; object arrays are refused."""
    try:
        loaded = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise DataError(f"{path}: cannot read without unpickling ({exc}); save plain numeric arrays") from None
    except Exception as exc:
        raise DataError(f"{path}: not a readable {path.suffix} file ({exc})") from None
    if isinstance(loaded, np.ndarray):
        return loaded
    with loaded:
        names = list(loaded.files)
        if "x" in names:
            key = "x"
        elif len(names) == 1:
            key = names[0]
        else:
            raise DataError(f"{path}: which array? name the inputs 'x' (found {', '.join(names) or 'none'})")
        try:
            return loaded[key]
        except ValueError as exc:
            raise DataError(f"{path}: cannot read {key!r} without unpickling ({exc}); save plain arrays") from None


def predict(
    model: str | Path | Predictor,
    inputs: str | Path | Sequence[str | Path] | np.ndarray | None = None,
    *,
    texts: Sequence[str] | None = None,
    top_k: int = 3,
    trust_remote_code: bool = False,
) -> list[Prediction]:
    """The ``top_k`` classes with probabilities for each input: files (``.csv`` rows, ``.txt`` lines,
    ``.npy``/``.npz`` arrays), an array of raw inputs, or ``texts`` for a text model."""
    predictor = model if isinstance(model, Predictor) else load_predictor(model, trust_remote_code)
    if top_k < 1:
        raise ConfigError(f"top_k must be at least 1 (got {top_k})")
    top_k = min(top_k, predictor.card.num_classes)
    names: list[str] = []
    batches: list[np.ndarray] = []
    if isinstance(inputs, np.ndarray):
        x = predictor.preprocessor.from_array(inputs, "inputs")
        names += [f"[{i}]" for i in range(len(x))]
        batches.append(x)
    elif inputs is not None:
        for item in [inputs] if isinstance(inputs, (str, Path)) else inputs:
            file_names, x = read_inputs(Path(item), predictor.preprocessor)
            names += file_names
            batches.append(x)
    if texts is not None:
        if isinstance(texts, str):
            raise ConfigError("texts must be a list of strings, not one string")
        batches.append(predictor.preprocessor.from_texts(list(texts), "texts"))
        names += [f"text {i}" for i in range(len(texts))]
    if not batches:
        raise DataError("no inputs given")
    outputs = predictor.probabilities(np.concatenate(batches), names)
    classes = predictor.card.class_names
    if predictor.task == "multitask":
        from protege.multitask.predictions import task_predictions

        rows = task_predictions(predictor.card.tasks, outputs)
        return [Prediction(name, [], [], tasks=row) for name, row in zip(names, rows, strict=True)]
    if predictor.task == "regression":
        return [
            Prediction(name, [], [], values=dict(zip(classes, map(float, row), strict=True)))
            for name, row in zip(names, outputs, strict=True)
        ]
    order = np.argsort(-outputs, axis=1, kind="stable")[:, :top_k]
    predictions = [
        Prediction(name, [classes[j] for j in ranks], [float(p[j]) for j in ranks])
        for name, p, ranks in zip(names, outputs, order, strict=True)
    ]
    if predictor.task == "multilabel":
        for prediction, p in zip(predictions, outputs, strict=True):
            prediction.labels = [classes[j] for j in np.flatnonzero(p >= 0.5)]
    return predictions


def print_predictions(predictions: list[Prediction], as_json: bool = False) -> None:
    """A table (input, then one column per rank: class and probability), or JSON, on stdout."""
    if as_json:
        # one JSON array, one input per line: json.loads reads it whole, grep and head line by line
        print("[\n" + ",\n".join(json.dumps(p.to_json()) for p in predictions) + "\n]")
        return
    from rich.table import Table
    from rich.text import Text

    table = Table()
    table.add_column("input")
    if predictions and predictions[0].tasks is not None:  # a multi-head model: one column per task
        from protege.multitask.predictions import task_table

        out_console.print(task_table(table, predictions))
        return
    if predictions and predictions[0].values is not None:  # regression: one column per target
        for target in predictions[0].values:
            table.add_column(Text(target), justify="right")
        for prediction in predictions:
            table.add_row(Text(prediction.input), *(f"{v:.6g}" for v in prediction.values.values()))
        out_console.print(table)
        return
    if predictions and predictions[0].labels is not None:
        table.add_column("labels (p ≥ 0.5)")
    ranks = max((len(p.classes) for p in predictions), default=0)
    for rank in range(ranks):
        table.add_column(f"#{rank + 1}", justify="left")
    for prediction in predictions:
        # Text cells: a class or file name such as "[red]" must not be read as rich markup
        cells = [Text(f"{c}  {p:.1%}") for c, p in zip(prediction.classes, prediction.probabilities, strict=True)]
        if prediction.labels is not None:
            cells.insert(0, Text(", ".join(prediction.labels) or "–"))
        table.add_row(Text(prediction.input), *cells)
    out_console.print(table)
