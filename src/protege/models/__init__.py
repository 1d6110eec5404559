"""Model sources: builtin architectures by name, ``timm:<name>``, ``torchvision:<name>``, ``hf:<id or folder>``,
and ``run:path`` (a model a previous run saved)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from protege.errors import ModelError, did_you_mean
from protege.models.builtin import BUILTIN
from protege.models.compatibility import align_classes
from protege.models.store import ModelCard, load_weights, read_card, resolve_run_path, save_model
from protege.models.text_students import (
    TEXT_STUDENTS,
    architecture_options,
    check_student_options,
    set_embeddings,
    token_vocabulary,
)
from protege.options import Fields, signature_fields
from protege.registry import Registry

__all__ = [
    "BuiltModel",
    "ModelCard",
    "build_model",
    "check_model_options",
    "example_input",
    "load_run_model",
    "resolve_run_path",
    "save_model",
]


@dataclass
class BuiltModel:
    """A module plus its card; ``trained`` says whether the weights came from a file."""

    module: nn.Module
    card: ModelCard
    trained: bool


LIBRARIES = ("timm", "torchvision", "hf")
"""Sources ``library:name``: any timm or torchvision model, any Hugging Face text encoder."""

RUN_OPTIONS = ("trust_remote_code",)
"""What a ``run:`` model block may say: the architecture comes from the saved card, the permission to
run a saved Hugging Face model's code only from the user."""


def trusts_remote_code(options: dict) -> bool:
    """Whether the user (a recipe's model block, a command-line flag) allows a Hugging Face model's files to
    run code; a saved card's ``trust_remote_code`` is never passed here."""
    return options.get("trust_remote_code") is True


def check_model_options(source: str, options: dict) -> dict:
    """Fail early, with a suggestion, on an unknown source, an option the architecture lacks, or (for a
    builtin or ``hf:`` model) an option of the wrong type or out of its range; return the options as validated."""
    kind, _, name = source.partition(":")
    if kind in ("run", "hf") and not isinstance(options.get("trust_remote_code", False), bool):
        raise ModelError(f"model {source!r}: trust_remote_code must be true or false")
    if kind == "run":
        unknown = [option for option in options if option not in RUN_OPTIONS]
        if unknown:
            raise ModelError(
                f"model source {source!r} takes only {', '.join(RUN_OPTIONS)} (got {', '.join(unknown)}); "
                f"its architecture and options come from the saved model"
            )
        return options
    if kind in LIBRARIES:
        if not name:
            raise ModelError(f"model source {source!r} needs a name: {kind}:<name>")
        if kind == "hf":
            from protege.models.hf_cut import check_cut_options

            checked = MODELS.check_options("hf", options, label=repr(source))
            check_cut_options(checked, f"model {source!r}")
            return checked
        return options  # timm/torchvision pass other options to the library's constructor, which checks them
    if source not in BUILTIN:
        known = ", ".join([*BUILTIN, "timm:<name>", "torchvision:<name>", "hf:<id or folder>", "run:path"])
        raise ModelError(f"unknown model source {source!r}{did_you_mean(source, BUILTIN)}; known: {known}")
    checked = MODELS.check_options(source, options)
    if source in TEXT_STUDENTS:
        check_student_options(source, checked)
    return checked


def _model_fields(builder) -> Fields:
    """A model source's options: a builtin's constructor arguments, for a text student also those of how it
    reads text, and for ``hf`` those of ``build_hf`` and of its tokenizer encoder (the text options)."""
    if builder == "hf":
        from protege.models.hf import TokenizerEncoder, build_hf

        fields = signature_fields(build_hf, skip=("reference", "input_shape", "num_classes", "preprocess"))
        return fields | signature_fields(TokenizerEncoder.__init__, skip=("tokenizer", "source"))
    if builder in TEXT_STUDENTS.values():
        from protege.data.text import WordIds
        from protege.models.hf import student_text_encoder

        fields = signature_fields(builder, skip=("input_shape", "num_classes", "vocab_size", "pad_id"))
        return fields | signature_fields(WordIds.__init__, skip=("words",)) | signature_fields(student_text_encoder)
    return signature_fields(builder, skip=("input_shape", "num_classes"))


MODELS: Registry = Registry("model", fields=_model_fields, error=ModelError)
"""The model sources whose options protege checks: the builtins, and ``hf`` (timm and torchvision check
their own; ``run:`` takes only ``trust_remote_code``)."""
for _name, _builder in BUILTIN.items():
    MODELS.register(_name)(_builder)
MODELS.register("hf")("hf")


def build_builtin(
    architecture: str, input_shape: tuple[int, ...], num_classes: int, options: dict, preprocess: dict | None = None
) -> nn.Module:
    """A builtin model, sized on the meta device first: options (or a tampered model.json) that ask for
    more than MAX_PARAMETERS are refused before any memory is allocated. A text student's embedding table
    is sized by the token ids its view (``preprocess``) gives."""
    builder = BUILTIN[architecture]
    shape = tuple(input_shape)
    arguments = dict(options)
    if architecture in TEXT_STUDENTS:
        vocab_size, pad_id = token_vocabulary(preprocess, architecture, options)
        arguments = architecture_options(builder, options) | {"vocab_size": vocab_size, "pad_id": pad_id}
    try:
        with torch.device("meta"):
            size = sum(p.numel() for p in builder(shape, num_classes, **arguments).parameters())
        if size > MAX_PARAMETERS:
            raise ModelError(
                f"model {architecture!r} with {_shown(options)} for inputs of shape {shape} would have "
                f"{size:,} parameters, more than the {MAX_PARAMETERS:,} a builtin model may have; make it smaller"
            )
        return builder(shape, num_classes, **arguments)
    except (TypeError, ValueError, RuntimeError, OverflowError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot build model {architecture!r} for inputs of shape {shape}: {first}") from None


MAX_PARAMETERS = 2**28
"""The largest builtin model (268M parameters, 1 GiB of float32 weights): the builtins are small networks."""


def _shown(options: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in options.items()) or "the default options"


def build_model(
    source: str,
    options: dict,
    input_shape: tuple[int, ...],
    class_names: list[str],
    preprocess: dict | None = None,
) -> BuiltModel:
    """Build a fresh builtin model for the data, or load ``run:path`` and check it fits the data."""
    options = check_model_options(source, options)
    if source.startswith("run:"):
        return load_run_model(source, input_shape, class_names, trusts_remote_code(options))
    kind, _, name = source.partition(":")
    steps = with_own_normalization(source, options, dict(preprocess or {}), input_shape[0])
    if kind in LIBRARIES:
        module = build_library_model(kind, name, options, tuple(input_shape), len(class_names), steps)
        recorded = {**options, **getattr(module, "card_options", {})}  # a cut hf: model's layers taken
        card = ModelCard(source, recorded, list(input_shape), list(class_names), steps)
        return BuiltModel(module, card, trained=False)
    module = build_builtin(source, tuple(input_shape), len(class_names), options, preprocess)
    if source in TEXT_STUDENTS:
        _start_text_student(module, source, options)
    card = ModelCard(source, options, list(input_shape), list(class_names), steps)
    return BuiltModel(module, card, trained=False)


def _start_text_student(module: nn.Module, source: str, options: dict) -> None:
    """A text student that reads a Hugging Face tokenizer's ids keeps that tokenizer (saved beside its
    weights and carried by its exports) and, with ``embeddings_from``, starts from that model's embeddings."""
    from protege.console import log
    from protege.models.hf import input_embeddings, load_tokenizer

    trust = trusts_remote_code(options)
    if options.get("tokenizer") is not None:
        module.tokenizer = load_tokenizer(options["tokenizer"].partition(":")[2], trust, what=options["tokenizer"])
    if options.get("embeddings_from") is not None:
        origin = options["embeddings_from"]
        how = set_embeddings(module, input_embeddings(origin, trust), origin)
        log(f"{source}: embeddings from {origin}, {how}")


def load_run_model(
    source: str,
    input_shape: tuple[int, ...] | None,
    class_names: list[str] | None,
    trust_remote_code: bool = False,
) -> BuiltModel:
    """Rebuild a saved model from its card and weights, checking it fits the data it will see.
    ``trust_remote_code`` is the user's permission for a Hugging Face model's code (never the card's)."""
    directory = resolve_run_path(source)
    card = read_card(directory)
    kind, _, name = card.architecture.partition(":")
    if card.architecture not in BUILTIN and kind not in LIBRARIES:
        raise ModelError(f"{source}: architecture {card.architecture!r} cannot be rebuilt by this protege")
    if class_names is not None and card.num_classes != len(class_names):
        align_classes(nn.Identity(), card, class_names, source)  # refuses before anything is built
    if input_shape is not None and list(input_shape) != list(card.input_shape):
        raise ModelError(f"{source} takes inputs of shape {tuple(card.input_shape)}, the data has {tuple(input_shape)}")
    if kind == "hf":
        from protege.models.hf import rebuild_hf

        try:
            options = check_model_options(card.architecture, card.options)
        except ModelError as exc:
            raise ModelError(f"{directory / 'model.json'}: {exc}") from None
        module = rebuild_hf(directory, card.num_classes, options, trust_remote_code)
    elif kind in LIBRARIES:
        # the architecture only: the trained weights come from model.safetensors, never a download
        options = {k: v for k, v in card.options.items() if k not in ("weights", "preprocess")} | {"pretrained": False}
        module = build_library_model(kind, name, options, tuple(card.input_shape), card.num_classes, card.preprocess)
    else:
        module = builtin_from_card(card, str(directory / "model.json"))
        if card.architecture in TEXT_STUDENTS and "tokenizer" in card.preprocess:
            from protege.models.hf import load_tokenizer

            module.tokenizer = load_tokenizer(str(directory), trust_remote_code, what=source)
    with_card_heads(module, card)
    load_weights(module, directory / "model.safetensors")
    if class_names is not None:
        align_classes(module, card, list(class_names), source)
    return BuiltModel(module, card, trained=True)


def with_card_heads(module: nn.Module, card: ModelCard) -> nn.Module:
    """A multi-head model's heads, one per task its card records (protege.multitask.heads), in place."""
    if card.tasks:
        from protege.multitask.heads import attach_heads, card_widths

        attach_heads(module, card_widths(card.tasks))
    return module


def builtin_from_card(card: ModelCard, origin: str) -> nn.Module:
    """The untrained builtin module a saved card describes; options that do not fit the architecture
    (a hand-edited or tampered model.json) name the file."""
    try:
        options = check_model_options(card.architecture, card.options)
        return build_builtin(card.architecture, tuple(card.input_shape), card.num_classes, options, card.preprocess)
    except ModelError as exc:
        raise ModelError(f"{origin}: {exc}") from None


def build_library_model(
    kind: str, name: str, options: dict, input_shape: tuple[int, ...], num_classes: int, preprocess: dict | None
) -> nn.Module:
    """A timm, torchvision or Hugging Face model with a new head for ``num_classes``."""
    if kind == "hf":
        from protege.models.hf import build_hf

        return build_hf(name, input_shape, num_classes, preprocess, **options)
    from protege.models.vision import build_timm, build_torchvision

    if reads_token_ids(preprocess or {}):
        raise ModelError(f"{kind}:{name} reads images, but the data is token ids; use an hf: model for text")
    builder = build_timm if kind == "timm" else build_torchvision
    arguments = {k: v for k, v in options.items() if k != "preprocess"}  # protege's option, not the library's
    view = (preprocess or {}).get("model_input") or {}
    normalize = (view["mean"], view["std"]) if view.get("mean") is not None else None
    return builder(name, input_shape, num_classes, normalize=normalize, **arguments)


def with_own_normalization(source: str, options: dict, preprocess: dict, channels: int) -> dict:
    """The data's preprocessing with the model's own mean/std (for ``channels``) in ``model_input``: the view
    it reads may be another model's geometry, the normalisation is its own (None where it asks for none). As
    it was where the images were not resized for a model (``model_input`` absent)."""
    from protege.models.image_inputs import resolve_model_input

    stored = preprocess.get("model_input")
    if stored is None:
        return preprocess
    own = resolve_model_input(source, options)
    if own is not None and own.mean is not None:
        own = own.for_channels(channels, f"model {source!r}")
    mean, std = (list(own.mean), list(own.std)) if own is not None and own.mean is not None else (None, None)
    return {**preprocess, "model_input": {**stored, "mean": mean, "std": std}}


def example_input(card: ModelCard, batch_size: int = 1) -> torch.Tensor:
    """A batch the model accepts, for tracing, export and timing: token ids (padding) for a text model,
    standard normal values otherwise."""
    shape = (batch_size, *card.input_shape)
    if reads_token_ids(card.preprocess):
        return torch.zeros(shape, dtype=torch.long)
    return torch.randn(shape)


def reads_token_ids(preprocess: dict) -> bool:
    """Whether inputs encoded this way are token ids (a tokenizer's, or a text student's word ids)."""
    return bool(preprocess.get("tokenizer") or preprocess.get("word_ids"))
