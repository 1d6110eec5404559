"""Export a saved model as safetensors, ONNX or TorchScript, with its card (labels, input shape,
preprocessing) inside the file, and read such files back. A Hugging Face model's file also carries its
tokenizer files (and, for safetensors, which rebuilds the module, its config), so it is used on its own.

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
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch
from torch import nn

from protege.console import log, without_log
from protege.data.dataset import first_inputs
from protege.errors import CheckpointError, ConfigError, ModelError, ProtegeError, did_you_mean
from protege.files import check_writable_file, read_text
from protege.models import (
    LIBRARIES,
    build_library_model,
    builtin_from_card,
    example_input,
    load_run_model,
    resolve_run_path,
    with_card_heads,
)
from protege.models.builtin import BUILTIN
from protege.models.hf import pack_files, rebuild_hf, unpacked
from protege.models.store import (
    ModelCard,
    atomic_write_bytes,
    atomic_write_text,
    card_from_json,
    card_to_json,
    state_for_saving,
)

if TYPE_CHECKING:
    from protege.data.dataset import DataBundle

FORMATS = {"safetensors": ".safetensors", "onnx": ".onnx", "torchscript": ".pt"}
CARD_KEY = "protege"
"""Metadata key (ONNX metadata_props, safetensors header) holding the card as JSON."""
LABELS_KEY = "class_names"
"""Metadata key holding just the class names, a JSON list, for tools that know nothing of protege."""
TORCHSCRIPT_CARD = "protege.json"
"""The TorchScript archive's extra file holding the card."""
FILES_KEY = "hf_files"
"""Metadata key (TorchScript: extra file) of a Hugging Face model's files, a JSON object of base64 strings
by file name (tokenizer.json, tokenizer_config.json, ...; config.json in safetensors)."""
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
    trust_remote_code: bool = False,
) -> ExportResult:
    """Write the model saved at ``source`` (a run, stage or model directory) as ``format``, after checking
    that the written file gives PyTorch's logits within ``tolerance`` (relative to the largest logit).
    ``trust_remote_code`` is the user's permission for a Hugging Face model's code."""
    if format not in FORMATS:
        known = ", ".join(FORMATS)
        raise ConfigError(f"unknown export format {format!r}{did_you_mean(format, FORMATS)}; known: {known}")
    if not tolerance > 0:
        raise ConfigError(f"tolerance must be positive (got {tolerance})")
    model_dir = locate_model(source, stage)
    built = load_run_model(f"run:{model_dir}", None, None, trust_remote_code)
    module, card = built.module.eval(), built.card
    path = Path(output).expanduser() if output is not None else default_output(model_dir, format)
    if path.suffix.lower() != FORMATS[format]:
        raise ConfigError(
            f"output {path} must end in {FORMATS[format]} for format {format} (predict tells formats apart by it)"
        )
    check_writable_file(path)
    if format == "safetensors":
        check_writable_file(path.with_suffix(".json"))
    samples, described = sample_inputs(model_dir, card, module, trust_remote_code)
    log(f"export: {card.architecture} from {model_dir} as {format}, checked on {described}")

    writer, reader = _FORMATS[format]
    data = writer(module, card)
    runtime, read_card, _ = reader(data, str(path), trust_remote_code)
    if read_card != card:
        raise ModelError(f"{format} export of {model_dir} did not keep the model's card; nothing written")
    diff = check_outputs(module, runtime, samples, tolerance, f"{format} export of {model_dir}")

    atomic_write_bytes(path, data)
    if format == "safetensors":
        atomic_write_text(path.with_suffix(".json"), card_to_json(card))
    return ExportResult(path, format, card, diff, described)


def sample_inputs(
    model_dir: Path, card: ModelCard, module: nn.Module, trust_remote_code: bool = False, count: int = SAMPLE_COUNT
) -> tuple[torch.Tensor, str]:
    """Inputs to compare the export with PyTorch on: the run's test split when the model sits in a run
    whose data can be loaded (texts through the model's saved tokenizer), else seeded random inputs."""
    try:
        data = run_data(model_dir, trust_remote_code)
    except ProtegeError as exc:
        log(f"export: cannot load the run's data ({exc}); checking on random inputs")
        data = None
    if data is not None and list(data.input_shape) == list(card.input_shape):
        x = first_inputs(data.test, count)
        return x, f"{len(x)} test inputs"
    generator = torch.Generator().manual_seed(0)
    if example_input(card).dtype == torch.long:  # token ids: any id of the vocabulary, padding included
        ids = torch.randint(0, module.vocab_size, (count, *card.input_shape), generator=generator)
        return ids, f"{count} random inputs"
    return torch.randn(count, *card.input_shape, generator=generator), f"{count} random inputs"


def run_data(model_dir: Path, trust_remote_code: bool = False) -> DataBundle | None:
    """The splits of the run whose stage model ``model_dir`` is (its recipe's data, texts through the
    model's saved tokenizer, images resized as its card says), or None for a model outside a run; data
    that cannot be loaded raises."""
    config = model_dir.parent.parent / "config.yaml"
    if model_dir.name != "model" or not config.is_file():
        return None
    from protege.models.view_encoders import saved_model_encoder
    from protege.pipeline import split_recipe_data
    from protege.recipe_reader import load_recipe

    encoder = saved_model_encoder(model_dir, trust_remote_code)
    return split_recipe_data(load_recipe(config), encoder)


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
        if not np.isfinite(expected).all():
            raise ModelError(f"{what}: the model gives non-finite outputs (NaN or infinity); nothing written")
        worst = max(worst, float(np.abs(got - expected).max()))
        scale = max(scale, float(np.abs(expected).max()))
    if not worst <= tolerance * scale:
        raise ModelError(
            f"{what} differs from PyTorch by up to {worst:.3g} (tolerance {tolerance * scale:.3g}); nothing written"
        )
    return worst


def metadata(card: ModelCard, module: nn.Module, rebuilds: bool = False) -> dict[str, str]:
    """String metadata every format carries: the whole card, the class names on their own and, for a
    Hugging Face model, its tokenizer files (and its config when the format ``rebuilds`` the module)."""
    meta = {CARD_KEY: card_to_json(card), LABELS_KEY: json.dumps(card.class_names)}
    save = getattr(module, "save_assets" if rebuilds else "save_tokenizer", None)
    if callable(save):
        meta[FILES_KEY] = json.dumps(pack_files(save))
    return meta


def embedded_files(text: str | None, origin: str) -> dict[str, str] | None:
    """The Hugging Face files of an exported model's metadata, or None (a model without them)."""
    if not text:
        return None
    try:
        files = json.loads(text)
    except ValueError:
        files = None
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise CheckpointError(f"{origin}: its {FILES_KEY} metadata is not a JSON object of file contents")
    return files


def input_dtype(card: ModelCard) -> np.dtype:
    """What the model reads: int64 token ids for a text model with a tokenizer, float32 otherwise."""
    return example_input(card).numpy().dtype


# Writers: the exported file as bytes. Readers: (a function from model inputs to logits, the card, the
# Hugging Face files it carries or None).


def write_safetensors(module: nn.Module, card: ModelCard) -> bytes:
    from safetensors.torch import save

    return save(state_for_saving(module), metadata=metadata(card, module, rebuilds=True))


def read_safetensors(
    data: bytes | Path, origin: str, trust_remote_code: bool = False
) -> tuple[nn.Module, ModelCard, dict[str, str] | None]:
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
    files = embedded_files(header.get(FILES_KEY), origin)
    module = rebuild(card, origin, files, trust_remote_code)
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if "\n" in str(exc) else str(exc)
        raise CheckpointError(f"{origin}: weights do not fit the {card.architecture} of its card: {first}") from None
    return module.eval(), card, files


def _safetensors_header(raw: bytes) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file: an 8-byte little-endian length, then a JSON header."""
    length = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8 : 8 + length]).get("__metadata__") or {}


def rebuild(card: ModelCard, origin: str, files: dict[str, str] | None = None, trust: bool = False) -> nn.Module:
    """An untrained module of the architecture the card names; a Hugging Face one from the config and
    tokenizer ``files`` the export carries (never a download), timm and torchvision ones without weights."""
    return with_card_heads(_rebuild_module(card, origin, files, trust), card)


def _rebuild_module(card: ModelCard, origin: str, files: dict[str, str] | None, trust: bool) -> nn.Module:
    kind, _, name = card.architecture.partition(":")
    if card.architecture in BUILTIN:
        return builtin_from_card(card, origin)
    if kind == "hf":
        if not files:
            raise ModelError(f"{origin}: no Hugging Face config in the file; export the model again with protege")
        with unpacked(files, origin) as folder:
            return rebuild_hf(folder, card.num_classes, card.options, trust, f"{origin} (its Hugging Face files)")
    if kind in LIBRARIES:
        options = {k: v for k, v in card.options.items() if k != "weights"} | {"pretrained": False}
        return build_library_model(kind, name, options, tuple(card.input_shape), card.num_classes, card.preprocess)
    raise ModelError(f"{origin}: architecture {card.architecture!r} cannot be rebuilt by this protege")


def write_onnx(module: nn.Module, card: ModelCard) -> bytes:
    """torch.onnx's dynamo exporter (the supported one since torch 2.9) with a dynamic batch axis; the
    input is int64 token ids for a text model with a tokenizer, float32 otherwise. The output is ``logits``,
    or for a multi-head model one output per task, named by the task."""
    example = example_input(card, batch_size=2)
    # onnxscript's constant folding tries onnx's reference evaluator on constant subgraphs and warns
    # "Evaluation failed" where it cannot run an op (GatherElements over a BERT-like model's position
    # buffer); the node is then just left unfolded, and the written graph is checked like any other
    names = ["logits"]
    if card.tasks:  # a multi-head model: one named output per task (protege.multitask)
        from protege.multitask.heads import TaskOutputs, card_widths

        names, module = [entry["name"] for entry in card.tasks], TaskOutputs(module, card_widths(card.tasks)).eval()
    try:
        with without_log("onnxscript.optimizer._constant_folding", "Evaluation failed"):
            program = torch.onnx.export(
                module,
                (example,),
                dynamo=True,
                input_names=["input"],
                output_names=names,
                dynamic_shapes=({0: torch.export.Dim("batch")},),
                verbose=False,
            )
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"ONNX export of {card.architecture} failed: {first}") from None
    proto = program.model_proto
    for key, value in metadata(card, module).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return proto.SerializeToString()


def read_onnx(
    data: bytes | Path, origin: str, trust_remote_code: bool = False, *, threads: int | None = None
) -> tuple[Callable[[np.ndarray], np.ndarray], ModelCard, dict[str, str] | None]:
    """An onnxruntime session (CPU, ``threads`` threads, default torch's count), the card and the Hugging
    Face files from the file's metadata; inputs are cast to what the graph declares (int64 token ids,
    float32 values). Reading runs no code."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
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
    graph_input = session.get_inputs()[0]
    dtype = np.int64 if graph_input.type == "tensor(int64)" else np.float32

    def run(x: np.ndarray) -> np.ndarray:
        outputs = session.run(None, {graph_input.name: np.ascontiguousarray(x, dtype=dtype)})
        return outputs[0] if len(outputs) == 1 else np.concatenate(outputs, axis=-1)  # one output per task

    return run, card, embedded_files(meta.get(FILES_KEY), origin)


def write_torchscript(module: nn.Module, card: ModelCard) -> bytes:
    """A traced module (the builtin models have no data-dependent control flow) with the card (and a text
    model's tokenizer files) as extra files. torch marks torch.jit deprecated; the format is still what many
    C++ runtimes load."""
    example = example_input(card, batch_size=2)
    buffer = io.BytesIO()
    # tracing reads every property of the module, and transformers' loss_function property warns that the
    # config names no loss (an encoder exported for inference computes none)
    with warnings.catch_warnings(), without_log("transformers.modeling_utils", "`loss_type="):
        warnings.simplefilter("ignore", FutureWarning)
        # what tracing warns about (Python values frozen into the graph) is what the check after writing
        # tests: the graph runs on real inputs and on a batch of one, and must give PyTorch's logits
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(module, (example,), check_trace=False)
        meta = metadata(card, module)
        extra = {TORCHSCRIPT_CARD: meta[CARD_KEY], **({FILES_KEY: meta[FILES_KEY]} if FILES_KEY in meta else {})}
        torch.jit.save(traced, buffer, _extra_files=extra)
    return buffer.getvalue()


def read_torchscript(
    data: bytes | Path, origin: str, trust_remote_code: bool = False
) -> tuple[Callable[[np.ndarray], np.ndarray], ModelCard, dict[str, str] | None]:
    """The TorchScript module, its card and Hugging Face files. Loading runs the archive's TorchScript
    program: trusted files only."""
    extra = {TORCHSCRIPT_CARD: "", FILES_KEY: ""}
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
    files = embedded_files(extra[FILES_KEY].decode("utf-8") if extra[FILES_KEY] else None, origin)
    return torch_runtime(module.eval(), input_dtype(card)), card, files


def torch_runtime(module: nn.Module, dtype: np.dtype = np.float32) -> Callable[[np.ndarray], np.ndarray]:
    """Model inputs (numpy, cast to ``dtype``) to logits (numpy) through a PyTorch or TorchScript module,
    without gradients."""

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(np.ascontiguousarray(x, dtype=dtype))).float().numpy()

    return run


def _read_safetensors_runtime(
    data: bytes | Path, origin: str, trust_remote_code: bool = False
) -> tuple[Callable[[np.ndarray], np.ndarray], ModelCard, dict[str, str] | None]:
    module, card, files = read_safetensors(data, origin, trust_remote_code)
    return torch_runtime(module, input_dtype(card)), card, files


_FORMATS = {
    "safetensors": (write_safetensors, _read_safetensors_runtime),
    "onnx": (write_onnx, read_onnx),
    "torchscript": (write_torchscript, read_torchscript),
}


class Exported(NamedTuple):
    """An exported file, loaded: model inputs to logits, the card, the runtime's name, and the Hugging Face
    files it carries (a text model's tokenizer) or None."""

    logits: Callable[[np.ndarray], np.ndarray]
    card: ModelCard
    runtime: str
    files: dict[str, str] | None


def read_exported(path: Path, trust_remote_code: bool = False) -> Exported:
    """Load an exported file by its suffix; ``trust_remote_code`` is the user's permission for the code a
    Hugging Face model's files name (needed only to rebuild one from safetensors)."""
    suffix = path.suffix.lower()
    readers = {".onnx": (read_onnx, "onnxruntime"), ".pt": (read_torchscript, "torchscript")}
    readers[".safetensors"] = (_read_safetensors_runtime, "pytorch")
    if suffix not in readers:
        raise ModelError(f"{path}: unknown model file type {suffix!r}; give a .onnx, .pt or .safetensors file")
    reader, runtime = readers[suffix]
    logits, card, files = reader(path, str(path), trust_remote_code)
    return Exported(logits, card, runtime, files)
