"""``protege export --quantize int8``: a scheme or format it does not apply to, a tolerance that is no
tolerance, a model without a run to measure it on, and an int8 model that loses too much accuracy (refused
with both accuracies named, and the run's report left as it was)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.catalogue import saved_model
from tests.export_runs import add_outlier_weight, tabular_run


def int8(tmp: Path, *flags: str) -> list[str]:
    return ["export", str(saved_model(tmp, 10)), "--quantize", "int8", *flags]


def int8_beyond_max_drop(tmp: Path) -> list[str]:
    """A trained tabular run whose student gets one outlier weight: int8 rounds the rest of its layer away."""
    run = tabular_run(tmp).run_dir
    add_outlier_weight(run / "student" / "model")
    return ["export", str(run), "--quantize", "int8", "--max-drop", "0.05"]


CASES: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "int8 as TorchScript": (
        lambda t: int8(t, "-f", "torchscript"),
        "--quantize int8 writes ONNX only (onnxruntime dynamic quantization), not torchscript; use --format onnx",
    ),
    "int8 as safetensors": (lambda t: int8(t, "-f", "safetensors"), "writes ONNX only"),
    "unknown quantization": (
        lambda t: ["export", str(saved_model(t, 10)), "--quantize", "int4"],
        "unknown quantization 'int4' (did you mean \"int8\"?); known: int8",
    ),
    "negative --max-drop": (
        lambda t: int8(t, "--max-drop", "-0.01"),
        "--max-drop must be a finite number at least 0, the largest drop of the test metric allowed (got -0.01",
    ),
    "NaN --max-drop": (lambda t: int8(t, "--max-drop", "nan"), "--max-drop must be a finite number at least 0"),
    "zero --threads": (lambda t: int8(t, "--threads", "0"), "--threads must be a whole number at least 1 (got 0)"),
    "int8 of a model outside a run": (
        int8,
        "is not a stage of a run, and --quantize int8 measures the accuracy drop on the run's test split",
    ),
    "int8 output that is not .onnx": (
        lambda t: int8(t, "-o", str(t / "model.pt")),
        "must end in .onnx for --quantize int8",
    ),
    "int8 model beyond --max-drop": (
        int8_beyond_max_drop,
        "int8 model refused: test accuracy 0.9667 (float) -> 0.3333 (int8), a drop of 0.6333 beyond --max-drop "
        "0.05; nothing written. Allow it with --max-drop 0.6334, or export the float model without --quantize",
    ),
}
