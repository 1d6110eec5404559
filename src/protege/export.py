"""Export a saved model as safetensors, ONNX or TorchScript, with its card (labels, input shape,
preprocessing) inside the file, and read such files back.

Every export is checked before it is written: the exported file is loaded back and run on sample
inputs (the run's test split when its data can be loaded, random inputs of the model's shape
otherwise), and the largest difference from PyTorch's logits must stay within a tolerance. Only the
model the run saved is exported; trainable parts of an objective (FitNet's adapter) never are.
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from protege.console import log
from protege.errors import CheckpointError, ConfigError, ModelError, ProtegeError, did_you_mean
from protege.files import check_writable_file, read_text
from protege.models import builtin_from_card, load_run_model, resolve_run_path
from protege.models.builtin import BUILTIN
from protege.models.store import (
    ModelCard,
    atomic_write_bytes,
    atomic_write_text,
    card_from_json,
    card_to_json,
    state_for_saving,
)

FORMATS = {"safetensors": ".safetensors", "onnx": ".onnx", "torchscript": ".pt"}
CARD_KEY = "protege"
"""Metadata key (ONNX metadata_props, safetensors header) holding the card as JSON."""
LABELS_KEY = "class_names"
"""Metadata key holding just the class names, a JSON list, for tools that know nothing of protege."""
TORCHSCRIPT_CARD = "protege.json"
"""The TorchScript archive's extra file holding the card."""
DEFAULT_TOLERANCE = 1e-4
SAMPLE_COUNT = 64
STAGES = ("teacher", "student_baseline", "student")


@dataclass
class ExportResult:
    """Where the export went and how closely the exported file reproduces PyTorch."""

    path: Path
    format: str
    card: ModelCard
    max_abs_diff: float
    samples: str


def locate_model(source: str | Path, stage: str | None = None) -> Path:
    """The model directory of a run (its final model, or ``stage``), of a stage, or the model dir itself."""
    path = Path(str(source).removeprefix("run:")).expanduser()
    if stage is None:
        return resolve_run_path(f"run:{path}")
    candidate = path / stage / "model"
    if not (candidate / "model.json").is_file():
        present = [s for s in STAGES if (path / s / "model" / "model.json").is_file()]
        raise ModelError(
            f"{path} has no saved {stage!r} model{did_you_mean(stage, present)}; "
            f"stages there: {', '.join(present) or 'none (not a run directory)'}"
        )
    return candidate


def default_output(model_dir: Path, format: str) -> Path:
    """``<stage>/export/model.<ext>``: next to the stage's model, never inside it (a re-run replaces it)."""
    return model_dir.parent / "export" / f"model{FORMATS[format]}"


def export_model(
    source: str | Path,
    format: str = "onnx",
    *,
    stage: str | None = None,
    output: str | Path | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> ExportResult:
    """Write the model saved at ``source`` (a run, stage or model directory) as ``format``, after checking
    that the written file gives PyTorch's logits within ``tolerance`` (relative to the largest logit)."""
    if format not in FORMATS:
        known = ", ".join(FORMATS)
        raise ConfigError(f"unknown export format {format!r}{did_you_mean(format, FORMATS)}; known: {known}")
    if not tolerance > 0:
        raise ConfigError(f"tolerance must be positive (got {tolerance})")
    model_dir = locate_model(source, stage)
    built = load_run_model(f"run:{model_dir}", None, None)
    module, card = built.module.eval(), built.card
    path = Path(output).expanduser() if output is not None else default_output(model_dir, format)
    if path.suffix.lower() != FORMATS[format]:
        raise ConfigError(
            f"output {path} must end in {FORMATS[format]} for format {format} (predict tells formats apart by it)"
        )
    check_writable_file(path)
    if format == "safetensors":
        check_writable_file(path.with_suffix(".json"))
    samples, described = sample_inputs(model_dir, card)
    log(f"export: {card.architecture} from {model_dir} as {format}, checked on {described}")

    writer, reader = _FORMATS[format]
    data = writer(module, card)
    runtime, read_card = reader(data, str(path))
    if read_card != card:
        raise ModelError(f"{format} export of {model_dir} did not keep the model's card; nothing written")
    diff = check_outputs(module, runtime, samples, tolerance, f"{format} export of {model_dir}")

    atomic_write_bytes(path, data)
    if format == "safetensors":
        atomic_write_text(path.with_suffix(".json"), card_to_json(card))
    return ExportResult(path, format, card, diff, described)


def sample_inputs(model_dir: Path, card: ModelCard, count: int = SAMPLE_COUNT) -> tuple[torch.Tensor, str]:
    """Inputs to compare the export with PyTorch on: the run's test split when the model sits in a run
    whose data can be loaded, else seeded random inputs of the model's shape."""
    config = model_dir.parent.parent / "config.yaml"
    if model_dir.name == "model" and config.is_file():
        from protege.config import load_recipe
        from protege.pipeline import load_recipe_data

        try:
            data = load_recipe_data(load_recipe(config))
        except ProtegeError as exc:
            log(f"export: cannot load the run's data ({exc}); checking on random inputs")
        else:
            if list(data.input_shape) == list(card.input_shape):
                x = data.test.x[:count]
                return x, f"{len(x)} test inputs"
    generator = torch.Generator().manual_seed(0)
    return torch.randn(count, *card.input_shape, generator=generator), f"{count} random inputs"


def check_outputs(
    module: nn.Module, runtime: Callable[[np.ndarray], np.ndarray], samples: torch.Tensor, tolerance: float, what: str
) -> float:
    """Largest absolute difference between PyTorch's logits and ``runtime``'s, on the whole sample batch
    and on a batch of one (which proves the batch axis is dynamic); over the tolerance is an error."""
    worst = 0.0
    scale = 1.0
    for batch in (samples, samples[:1]):
        with torch.no_grad():
            expected = module(batch).float().numpy()
        got = np.asarray(runtime(batch.numpy()))
        if got.shape != expected.shape:
            raise ModelError(f"{what} gives outputs of shape {got.shape}, PyTorch {expected.shape}; nothing written")
        worst = max(worst, float(np.abs(got - expected).max()))
        scale = max(scale, float(np.abs(expected).max()))
    if not worst <= tolerance * scale:
        raise ModelError(
            f"{what} differs from PyTorch by up to {worst:.3g} (tolerance {tolerance * scale:.3g}); nothing written"
        )
    return worst


def metadata(card: ModelCard) -> dict[str, str]:
    """String metadata every format carries: the whole card, and the class names on their own."""
    return {CARD_KEY: card_to_json(card), LABELS_KEY: json.dumps(card.class_names)}


# Writers: the exported file as bytes. Readers: (a function from model inputs to logits, the card).


def write_safetensors(module: nn.Module, card: ModelCard) -> bytes:
    from safetensors.torch import save

    return save(state_for_saving(module), metadata=metadata(card))


def read_safetensors(data: bytes | Path, origin: str) -> tuple[nn.Module, ModelCard]:
    """Rebuild the module from a protege safetensors file (card in the header, or in the sidecar JSON)."""
    from safetensors.torch import load

    raw = Path(data).read_bytes() if isinstance(data, Path) else data
    try:
        state = load(raw)
        header = _safetensors_header(raw)
    except Exception as exc:
        raise CheckpointError(f"{origin}: not a readable safetensors file ({exc})") from None
    if CARD_KEY in header:
        card = card_from_json(header[CARD_KEY], f"{origin} (header metadata)")
    elif isinstance(data, Path) and data.with_suffix(".json").is_file():
        sidecar = data.with_suffix(".json")
        card = card_from_json(read_text(sidecar, CheckpointError), str(sidecar))
    else:
        raise CheckpointError(f"{origin}: no protege metadata in the file or beside it; export it with protege export")
    module = rebuild(card, origin)
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if "\n" in str(exc) else str(exc)
        raise CheckpointError(f"{origin}: weights do not fit the {card.architecture} of its card: {first}") from None
    return module.eval(), card


def _safetensors_header(raw: bytes) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file: an 8-byte little-endian length, then a JSON header."""
    length = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8 : 8 + length]).get("__metadata__") or {}


def rebuild(card: ModelCard, origin: str) -> nn.Module:
    """An untrained module of the architecture the card names."""
    if card.architecture not in BUILTIN:
        raise ModelError(f"{origin}: architecture {card.architecture!r} cannot be rebuilt by this protege")
    return builtin_from_card(card, origin)


def write_onnx(module: nn.Module, card: ModelCard) -> bytes:
    """torch.onnx's dynamo exporter (the supported one since torch 2.9) with a dynamic batch axis."""
    example = torch.zeros(2, *card.input_shape)
    try:
        program = torch.onnx.export(
            module,
            (example,),
            dynamo=True,
            input_names=["input"],
            output_names=["logits"],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            verbose=False,
        )
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"ONNX export of {card.architecture} failed: {first}") from None
    proto = program.model_proto
    for key, value in metadata(card).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return proto.SerializeToString()


def read_onnx(data: bytes | Path, origin: str) -> tuple[Callable[[np.ndarray], np.ndarray], ModelCard]:
    """An onnxruntime session (CPU) and the card from the file's metadata."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.log_severity_level = 3
    source = str(data) if isinstance(data, Path) else data
    try:
        session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{origin}: not a readable ONNX model ({first})") from None
    meta = session.get_modelmeta().custom_metadata_map
    if CARD_KEY not in meta:
        raise CheckpointError(f"{origin}: no protege metadata in this ONNX model; export it with protege export")
    card = card_from_json(meta[CARD_KEY], f"{origin} (metadata)")
    input_name = session.get_inputs()[0].name

    def run(x: np.ndarray) -> np.ndarray:
        return session.run(None, {input_name: np.ascontiguousarray(x, dtype=np.float32)})[0]

    return run, card


def write_torchscript(module: nn.Module, card: ModelCard) -> bytes:
    """A traced module (the builtin models have no data-dependent control flow) with the card as an
    extra file. torch marks torch.jit deprecated; the format is still what many C++ runtimes load."""
    example = torch.zeros(2, *card.input_shape)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        traced = torch.jit.trace(module, (example,), check_trace=False)
        torch.jit.save(traced, buffer, _extra_files={TORCHSCRIPT_CARD: card_to_json(card)})
    return buffer.getvalue()


def read_torchscript(data: bytes | Path, origin: str) -> tuple[Callable[[np.ndarray], np.ndarray], ModelCard]:
    """The TorchScript module and its card. Loading runs the archive's TorchScript program: trusted files only."""
    extra = {TORCHSCRIPT_CARD: ""}
    source = str(data) if isinstance(data, Path) else io.BytesIO(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            module = torch.jit.load(source, map_location="cpu", _extra_files=extra)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{origin}: not a readable TorchScript archive ({first})") from None
    if not extra[TORCHSCRIPT_CARD]:
        raise CheckpointError(f"{origin}: no protege metadata in this TorchScript file; export it with protege export")
    card = card_from_json(extra[TORCHSCRIPT_CARD].decode("utf-8"), f"{origin} ({TORCHSCRIPT_CARD})")
    return torch_runtime(module.eval()), card


def torch_runtime(module: nn.Module) -> Callable[[np.ndarray], np.ndarray]:
    """Model inputs (numpy) to logits (numpy) through a PyTorch or TorchScript module, without gradients."""

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).float().numpy()

    return run


def _read_safetensors_runtime(data: bytes | Path, origin: str) -> tuple[Callable[[np.ndarray], np.ndarray], ModelCard]:
    module, card = read_safetensors(data, origin)
    return torch_runtime(module), card


_FORMATS = {
    "safetensors": (write_safetensors, _read_safetensors_runtime),
    "onnx": (write_onnx, read_onnx),
    "torchscript": (write_torchscript, read_torchscript),
}


def read_exported(path: Path) -> tuple[Callable[[np.ndarray], np.ndarray], ModelCard, str]:
    """Load an exported file by its suffix: (model inputs -> logits, card, runtime name)."""
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return (*read_onnx(path, str(path)), "onnxruntime")
    if suffix == ".pt":
        return (*read_torchscript(path, str(path)), "torchscript")
    if suffix == ".safetensors":
        return (*_read_safetensors_runtime(path, str(path)), "pytorch")
    raise ModelError(f"{path}: unknown model file type {suffix!r}; give a .onnx, .pt or .safetensors file")
