"""``protege export --quantize int8``: an ONNX export with int8 weights (ONNX Runtime's dynamic
quantization), measured against the float model on the run's test split and refused when it loses more
of the task's metric than ``max_drop``.

ONNX Runtime, not PyTorch's dynamic quantization: the quantized graph is an ordinary ``.onnx`` file that
carries the card and runs wherever onnxruntime does (``protege predict``, ``read_exported``), while a
``torch.ao`` quantized module can be neither saved as safetensors nor rebuilt from a card without pickle.
Only the matrix products (``MatMul``, ``Gemm``: the Linear layers, as PyTorch's dynamic quantization
does) are quantized; convolutions stay float, as dynamic int8 convolutions are seldom faster on a CPU.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from protege.console import log, without_log
from protege.data.dataset import DataBundle
from protege.data.streamed import refuse_streamed
from protege.errors import CheckpointError, ConfigError, ModelError, QuantizationError, did_you_mean
from protege.evaluate import time_calls
from protege.export import (
    DEFAULT_TOLERANCE,
    FORMATS,
    ExportResult,
    check_outputs,
    locate_model,
    read_onnx,
    run_data,
    write_onnx,
)
from protege.files import check_writable_file, read_text
from protege.models import load_run_model
from protege.models.store import ModelCard, atomic_write_bytes, atomic_write_text
from protege.report import task_views
from protege.tasks import get_task

QUANTIZE = ("int8",)
DEFAULT_MAX_DROP = 0.01
"""Largest absolute drop of the task's test metric (accuracy: one point in a hundred) an int8 file may have."""
ROUNDING = 1e-6
"""Slack on the drop: metrics are float32, so 29/30 - 28/30 may come out a hair above 1/30."""
LATENCY_BATCH_SIZES = (1, 64)
DEFAULT_THREADS = 1
QUANTIZED_OPS = ["MatMul", "Gemm"]
METHOD = "onnxruntime dynamic quantization: int8 weights per tensor, activations quantized per batch at run time"


@dataclass
class QuantizedExport(ExportResult):
    """An int8 export: the file, its card and closeness to PyTorch, the measurements of the float and the
    int8 model (also in ``measures_path``), and the run's report.json they were added to (or None)."""

    measures: dict
    measures_path: Path
    report: Path | None


def default_output(model_dir: Path) -> Path:
    """``<stage>/export/model.int8.onnx``: beside the float exports, so neither replaces the other."""
    return model_dir.parent / "export" / "model.int8.onnx"


def measures_file(path: Path) -> Path:
    """The measurements' JSON beside an int8 file: ``model.int8.onnx`` -> ``model.int8.quantization.json``."""
    return path.with_name(f"{path.stem}.quantization.json")


def check_request(quantize: str, format: str, max_drop: float, threads: int) -> None:
    """Refuse, before any work, what int8 export cannot do: another scheme, another format, a bad tolerance."""
    if quantize not in QUANTIZE:
        raise ConfigError(f"unknown quantization {quantize!r}{did_you_mean(quantize, QUANTIZE)}; known: int8")
    if format != "onnx":
        raise ConfigError(
            f"--quantize int8 writes ONNX only (onnxruntime dynamic quantization), not {format}; "
            f"use --format onnx, or export {format} without --quantize"
        )
    if not (isinstance(max_drop, int | float) and math.isfinite(max_drop) and max_drop >= 0):
        raise ConfigError(
            f"--max-drop must be a finite number at least 0, the largest drop of the test metric allowed "
            f"(got {max_drop}; default {DEFAULT_MAX_DROP})"
        )
    if not (isinstance(threads, int) and threads >= 1):
        raise ConfigError(f"--threads must be a whole number at least 1 (got {threads})")


def export_int8(
    source: str | Path,
    quantize: str = "int8",
    *,
    format: str = "onnx",
    stage: str | None = None,
    output: str | Path | None = None,
    max_drop: float = DEFAULT_MAX_DROP,
    threads: int = DEFAULT_THREADS,
    tolerance: float = DEFAULT_TOLERANCE,
    trust_remote_code: bool = False,
) -> QuantizedExport:
    """Write an int8 ONNX file of the model saved at ``source`` (a run or stage directory), its measurements
    beside it and in the run's report, unless its test metric falls more than ``max_drop`` below the float
    model's; then nothing is written and a QuantizationError says both values."""
    check_request(quantize, format, max_drop, threads)
    model_dir = locate_model(source, stage)
    path = Path(output).expanduser() if output is not None else default_output(model_dir)
    if path.suffix.lower() != FORMATS["onnx"]:
        raise ConfigError(f"output {path} must end in .onnx for --quantize int8 (predict tells formats apart by it)")
    check_writable_file(path)
    check_writable_file(measures_file(path))
    built = load_run_model(f"run:{model_dir}", None, None, trust_remote_code)
    module, card = built.module.eval(), built.card
    data = measured_split(model_dir, card, trust_remote_code)
    refuse_streamed(data.test, "measuring an int8 export")  # onnxruntime reads the whole test split
    run_dir = model_dir.parent.parent
    report_path = run_dir / "report.json" if (run_dir / "report.json").is_file() else None
    if report_path is not None:
        read_report(report_path)  # a damaged report is refused before anything is written
    log(f"export: {card.architecture} from {model_dir} as int8 ONNX, measured on {len(data.test)} test examples")

    float_bytes = write_onnx(module, card)
    float_run, _, _ = read_onnx(float_bytes, "the float ONNX model", threads=threads)
    x = data.test.x
    check_outputs(module, float_run, x[:64], tolerance, f"float ONNX export of {model_dir}")
    int8_bytes = quantize_onnx(float_bytes)
    int8_run, int8_card, _ = read_onnx(int8_bytes, str(path), threads=threads)
    if int8_card != card:
        raise ModelError(f"int8 export of {model_dir} did not keep the model's card; nothing written")
    measures = measure(data, {"float": (float_run, float_bytes), "int8": (int8_run, int8_bytes)})
    measures.update(stage=model_dir.parent.name, file=_shown(path, run_dir), max_drop=max_drop, threads=threads)
    refuse_beyond(measures, max_drop)
    with torch.no_grad():
        diff = float(np.abs(int8_run(x[:64].numpy()) - module(x[:64]).float().numpy()).max())

    with _run_lock(run_dir if report_path is not None else None):
        atomic_write_bytes(path, int8_bytes)
        atomic_write_text(measures_file(path), json.dumps(measures, indent=2))
        if report_path is not None:
            add_to_report(report_path, measures)
    samples = f"{min(len(x), 64)} test inputs"
    return QuantizedExport(path, "onnx", card, diff, samples, measures, measures_file(path), report_path)


def measured_split(model_dir: Path, card: ModelCard, trust_remote_code: bool = False) -> DataBundle:
    """The run's splits, whose test split the float and int8 models are scored on; a model outside a run,
    or of a multi-head model (one metric per task), cannot be measured so is refused."""
    data = run_data(model_dir, trust_remote_code)
    if data is None:
        raise ModelError(
            f"{model_dir} is not a stage of a run, and --quantize int8 measures the accuracy drop on the run's "
            "test split; give the run directory (or its stage) the model was trained in"
        )
    if card.tasks or data.task == "multitask":
        raise ConfigError("--quantize int8 measures one task's metric; a multi-task model is exported in float only")
    if list(data.input_shape) != list(card.input_shape):
        raise ModelError(
            f"the run's data has inputs of shape {tuple(data.input_shape)}, the model {tuple(card.input_shape)}; "
            "its test split cannot measure this model"
        )
    return data


def quantize_onnx(data: bytes) -> bytes:
    """The float ONNX model ``data`` with int8 weights in its matrix products (QInt8, per tensor)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="protege-int8-") as folder:
        source, target = Path(folder) / "float.onnx", Path(folder) / "int8.onnx"
        source.write_bytes(data)
        # onnxruntime advises its pre-processing (shape inference, graph optimisation) for static
        # quantization and large transformer graphs; the dynamo exporter's graph already carries shapes
        with without_log("root", "Please consider to run pre-processing"):
            quantize_dynamic(source, target, op_types_to_quantize=QUANTIZED_OPS, weight_type=QuantType.QInt8)
        return target.read_bytes()


def measure(data: DataBundle, models: dict[str, tuple[Callable[[np.ndarray], np.ndarray], bytes]]) -> dict:
    """For the ``float`` and the ``int8`` model: the test metric (the task's headline metric, computed as
    evaluation computes it), CPU latency at batch 1 and 64 (median over timed blocks, the model alone) and
    file size; then the drop and how far the int8 outputs are from the float ones."""
    task = get_task(data.task)
    metric = task_views.HEADLINE[data.task]
    x, y = data.test.x.numpy(), data.test.y
    out: dict = {"metric": metric, "task": data.task, "test_examples": len(x), "method": METHOD}
    logits = {}
    for name, (runtime, blob) in models.items():
        logits[name] = all_logits(runtime, x)
        out[name] = {
            metric: task.metric(metric).compute(logits[name], y),
            "latency_ms": {str(b): latency_ms(runtime, x, b) for b in LATENCY_BATCH_SIZES},
            "file_bytes": len(blob),
        }
    first, last = logits["float"], logits["int8"]
    out["drop"] = out["float"][metric] - out["int8"][metric]
    out["max_abs_diff"] = float((first - last).abs().max())
    if data.task == "classification":
        out["agreement"] = float((first.argmax(-1) == last.argmax(-1)).float().mean())
    elif data.task == "multilabel":
        out["agreement"] = float(((first > 0) == (last > 0)).float().mean())
    return out


def all_logits(runtime: Callable[[np.ndarray], np.ndarray], x: np.ndarray, batch_size: int = 256) -> torch.Tensor:
    """``runtime``'s outputs for every input, a batch at a time (a large test split never goes in at once)."""
    parts = [np.asarray(runtime(x[i : i + batch_size])) for i in range(0, len(x), batch_size)]
    return torch.from_numpy(np.concatenate(parts)).float()


def latency_ms(runtime: Callable[[np.ndarray], np.ndarray], x: np.ndarray, batch_size: int) -> float:
    """Median milliseconds per call of ``runtime`` on a batch of ``batch_size`` test inputs (repeated
    when the split is smaller), timed as protege.evaluate times every model."""
    batch = np.concatenate([x] * math.ceil(batch_size / len(x)))[:batch_size]
    return time_calls(lambda: runtime(batch)).median_s * 1e3


def refuse_beyond(measures: dict, max_drop: float) -> None:
    """A QuantizationError naming both values when the int8 model's drop exceeds ``max_drop``."""
    metric, drop = measures["metric"], measures["drop"]
    if drop <= max_drop + ROUNDING:
        return
    raise QuantizationError(
        f"int8 model refused: test {metric} {measures['float'][metric]:.4f} (float) -> "
        f"{measures['int8'][metric]:.4f} (int8), a drop of {drop:.4f} beyond --max-drop {max_drop:g}; "
        f"nothing written. Allow it with --max-drop {math.ceil(drop * 1e4) / 1e4:g}, or export the float model "
        "without --quantize"
    )


def read_report(path: Path) -> dict:
    """The run's report.json (protege's own JSON, never code), refused in one line when damaged."""
    try:
        report = json.loads(read_text(path, CheckpointError))
    except ValueError as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc}); rerun the evaluation to rewrite it") from None
    if not isinstance(report, dict) or not isinstance(report.get("models"), dict):
        raise CheckpointError(f"{path}: not a protege report (no models); rerun the evaluation to rewrite it")
    return report


def add_to_report(path: Path, measures: dict) -> None:
    """Add ``measures`` to report.json under ``quantization.<stage>`` and redraw report.html beside it."""
    from protege.report.html import write_html
    from protege.report.summary import write_report

    report = read_report(path)
    report.setdefault("quantization", {})[measures["stage"]] = measures
    write_report(path, report)
    if (path.parent / "report.html").is_file():
        write_html(path.parent / "report.html", report)


def _run_lock(run_dir: Path | None):
    """The run directory's lock while its report changes (a run in progress there is refused)."""
    from protege import rundir

    return rundir.locked(run_dir) if run_dir is not None else nullcontext()


def _shown(path: Path, run_dir: Path) -> str:
    """``path`` relative to the run directory when it lies inside it, else as given."""
    try:
        return str(path.resolve().relative_to(run_dir.resolve()))
    except ValueError:
        return str(path)
