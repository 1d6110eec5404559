"""The Python API: train or distill a user's own model on their own data, no recipe needed."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from protege import rundir
from protege.config import TrainConfig
from protege.data.build import load_data
from protege.data.dataset import ArrayDataset, DataBundle, concat
from protege.data.views import check_same_examples, with_teacher_view
from protege.engine import fit
from protege.errors import ConfigError
from protege.evaluate import agreement, predict_logits, quality
from protege.export import DEFAULT_TOLERANCE, ExportResult, export_model
from protege.objectives import build_objective
from protege.predict import Prediction, Predictor
from protege.predict import predict as predict_inputs
from protege.quantize import DEFAULT_MAX_DROP, export_int8
from protege.transfer import Strategy, build_strategy

DataLike = DataBundle | Dataset | DataLoader | tuple | str


@dataclass
class Result:
    """A trained model, its per-epoch history and its final metrics (test metrics when a test split exists)."""

    model: nn.Module
    metrics: dict[str, Any] = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    teacher_mode: str | None = None
    seconds: float = 0.0


def _as_splits(data: DataLike, val_data: DataLike | None, seed: int):
    """(train, val, test, number of classes where known) from whatever the user handed over."""
    if isinstance(data, str):
        data = load_data(data, seed=seed)
    if isinstance(data, DataBundle):
        return data.train, (val_data if val_data is not None else data.val), data.test, data.num_classes
    if isinstance(data, tuple):
        if len(data) != 2:
            raise ConfigError("data given as a tuple must be (inputs, targets)")
        data = ArrayDataset(torch.as_tensor(data[0]).float(), torch.as_tensor(data[1]))
    if isinstance(val_data, tuple):
        val_data = ArrayDataset(torch.as_tensor(val_data[0]).float(), torch.as_tensor(val_data[1]))
    return data, val_data, None, None


def _config(options: dict) -> TrainConfig:
    try:
        return TrainConfig(**options)
    except Exception as exc:
        from pydantic import ValidationError

        from protege.config import describe_validation_error

        if isinstance(exc, ValidationError):
            raise ConfigError(f"training option {describe_validation_error(exc, TrainConfig)}") from None
        raise


def _run_dir(output_dir: str | Path | None, resume: bool) -> dict:
    """fit() arguments for checkpoints and metrics.jsonl under ``output_dir`` (none without one)."""
    if output_dir is None:
        return {"resume": resume}
    workdir = Path(output_dir)
    return {"workdir": workdir, "metrics_path": workdir / "metrics.jsonl", "resume": resume}


def _held(output_dir: str | Path | None) -> contextlib.AbstractContextManager:
    """The output folder's lock for the whole training (no second process trains into it meanwhile)."""
    if output_dir is None:
        return contextlib.nullcontext()
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    return rundir.locked(Path(output_dir))


def _finish(
    model: nn.Module,
    outcome,
    test: ArrayDataset | None,
    teacher: nn.Module | None,
    teacher_test: ArrayDataset | None = None,
) -> Result:
    metrics = dict(outcome.final)
    if test is not None:
        logits = predict_logits(model, test)
        metrics.update({f"test_{k}": v for k, v in quality(logits, test.y).items()})
        if teacher is not None:
            teacher_logits = predict_logits(teacher, teacher_test if teacher_test is not None else test)
            metrics.update({f"test_{k}": v for k, v in agreement(logits, teacher_logits).items()})
    return Result(model, metrics, outcome.history, outcome.teacher_mode, outcome.seconds)


def train(
    model: nn.Module,
    data: DataLike,
    *,
    val_data: DataLike | None = None,
    label_smoothing: float = 0.0,
    seed: int = 0,
    output_dir: str | Path | None = None,
    resume: bool = False,
    strategy: str | Strategy | None = None,
    strategy_options: dict | None = None,
    **options: Any,
) -> Result:
    """Train ``model`` with cross-entropy. ``data`` is a source name (``"digits"``), a DataBundle,
    a Dataset or DataLoader yielding (x, y), or an (inputs, targets) pair; ``options`` are
    :class:`TrainConfig` fields (epochs, lr, batch_size, schedule, ...). ``strategy`` names a transfer
    strategy (``"linear_probe"``, ``"finetune"``, ...) with ``strategy_options``, or is one."""
    train_set, val_set, test, num_classes = _as_splits(data, val_data, seed)
    objective = build_objective([("ce", {"label_smoothing": label_smoothing}, 1.0)])
    if isinstance(strategy, str):
        strategy = build_strategy(strategy, strategy_options or {})
    config = _config(options)
    with _held(output_dir):
        outcome = fit(
            model,
            train_set,
            objective,
            config,
            val=val_set,
            seed=seed,
            strategy=strategy,
            num_classes=num_classes,
            **_run_dir(output_dir, resume),
        )
    return _finish(outcome.model, outcome, test, None)


def distill(
    teacher: nn.Module,
    student: nn.Module,
    data: DataLike,
    *,
    temperature: float = 4.0,
    alpha: float = 0.9,
    transfer: torch.Tensor | ArrayDataset | None = None,
    teacher_cache: str = "auto",
    val_data: DataLike | None = None,
    seed: int = 0,
    output_dir: str | Path | None = None,
    resume: bool = False,
    teacher_data: DataBundle | None = None,
    **options: Any,
) -> Result:
    """Distill ``teacher`` into ``student`` with Hinton's soft targets; ``transfer`` adds unlabeled
    inputs that only the teacher labels. The teacher is frozen; its logits are cached when exact.
    ``teacher_data`` is the same examples as the teacher reads them, when it reads them otherwise than the
    student (its own tokenizer: protege.data.views); the teacher then runs on its own view of each example."""
    train_set, val_set, test, num_classes = _as_splits(data, val_data, seed)
    teacher_test = test
    if teacher_data is not None:
        if transfer is not None or not isinstance(train_set, ArrayDataset):
            raise ConfigError("teacher_data needs in-memory data for the student and no transfer set")
        if isinstance(data, DataBundle):
            check_same_examples(data, teacher_data, "the teacher's data")
        train_set = with_teacher_view(train_set, teacher_data.train, "the teacher's data")
        teacher_test = teacher_data.test if test is not None else None
    if transfer is not None:
        if not isinstance(train_set, ArrayDataset):
            raise ConfigError("a transfer set can only be added to in-memory data (a source name, bundle or tensors)")
        if isinstance(transfer, torch.Tensor):
            transfer = ArrayDataset(transfer.float(), torch.full((len(transfer),), -1))
        train_set = concat(train_set, transfer)
    objective = build_objective([("kd", {"temperature": temperature, "alpha": alpha}, 1.0)])
    with _held(output_dir):
        outcome = fit(
            student,
            train_set,
            objective,
            _config(options),
            val=val_set,
            teacher=teacher,
            teacher_cache=teacher_cache,
            seed=seed,
            stage="distill",
            num_classes=num_classes,
            **_run_dir(output_dir, resume),
        )
    return _finish(outcome.model, outcome, test, teacher, teacher_test)


def export(
    model: str | Path,
    format: str = "onnx",
    *,
    stage: str | None = None,
    output: str | Path | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    trust_remote_code: bool = False,
    quantize: str | None = None,
    max_drop: float = DEFAULT_MAX_DROP,
) -> ExportResult:
    """Export the model a run saved (``model``: run, stage or model directory) as safetensors, ONNX or
    TorchScript with its labels and preprocessing (a text model's tokenizer) inside; the written file is
    checked against PyTorch. ``trust_remote_code`` lets a Hugging Face model's files run their code.
    ``quantize="int8"``: an int8 ONNX file instead, refused when the test metric drops by more than
    ``max_drop`` (a QuantizedExport with the float and int8 measurements)."""
    if quantize is not None:
        return export_int8(
            model,
            quantize,
            format=format,
            stage=stage,
            output=output,
            max_drop=max_drop,
            tolerance=tolerance,
            trust_remote_code=trust_remote_code,
        )
    return export_model(
        model, format, stage=stage, output=output, tolerance=tolerance, trust_remote_code=trust_remote_code
    )


def predict(
    model: str | Path | Predictor,
    inputs: str | Path | list[str | Path] | Any = None,
    *,
    texts: list[str] | None = None,
    top_k: int = 3,
    trust_remote_code: bool = False,
) -> list[Prediction]:
    """Top-``top_k`` classes with probabilities from a run, model directory or exported file, for input
    files (.csv, .txt, .npy, .npz), an array of raw inputs, or ``texts``; training's preprocessing applies.
    ``trust_remote_code`` lets a Hugging Face model's files run their code."""
    return predict_inputs(model, inputs, texts=texts, top_k=top_k, trust_remote_code=trust_remote_code)
