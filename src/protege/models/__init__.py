"""Model sources: builtin architectures by name, ``timm:<name>``, ``torchvision:<name>``, ``hf:<id or folder>``,
and ``run:path`` (a model a previous run saved)."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from protege.errors import ModelError, did_you_mean
from protege.models.builtin import BUILTIN
from protege.models.compatibility import align_classes
from protege.models.store import ModelCard, load_weights, read_card, save_model

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


def check_model_options(source: str, options: dict) -> None:
    """Fail early, with a suggestion, on an unknown source or an option the architecture lacks."""
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
        return
    if kind in LIBRARIES:
        if not name:
            raise ModelError(f"model source {source!r} needs a name: {kind}:<name>")
        if kind == "hf":
            from protege.models.hf import HF_OPTIONS

            for option in options:
                if option not in HF_OPTIONS:
                    raise ModelError(
                        f"model {source!r} has no option {option!r}{did_you_mean(option, HF_OPTIONS)}; "
                        f"valid: {', '.join(HF_OPTIONS)}"
                    )
        return  # timm/torchvision pass other options to the library's constructor, which checks them
    if source not in BUILTIN:
        known = ", ".join([*BUILTIN, "timm:<name>", "torchvision:<name>", "hf:<id or folder>", "run:path"])
        raise ModelError(f"unknown model source {source!r}{did_you_mean(source, BUILTIN)}; known: {known}")
    params = [p for p in inspect.signature(BUILTIN[source]).parameters if p not in ("input_shape", "num_classes")]
    for name in options:
        if name not in params:
            raise ModelError(
                f"model {source!r} has no option {name!r}{did_you_mean(name, params)}; valid: {', '.join(params)}"
            )


def build_model(
    source: str,
    options: dict,
    input_shape: tuple[int, ...],
    class_names: list[str],
    preprocess: dict | None = None,
) -> BuiltModel:
    """Build a fresh builtin model for the data, or load ``run:path`` and check it fits the data."""
    check_model_options(source, options)
    if source.startswith("run:"):
        return load_run_model(source, input_shape, class_names, trusts_remote_code(options))
    kind, _, name = source.partition(":")
    if kind in LIBRARIES:
        module = build_library_model(kind, name, options, tuple(input_shape), len(class_names), preprocess)
        card = ModelCard(source, options, list(input_shape), list(class_names), dict(preprocess or {}))
        return BuiltModel(module, card, trained=False)
    try:
        module = BUILTIN[source](tuple(input_shape), len(class_names), **options)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"cannot build model {source!r} for inputs of shape {tuple(input_shape)}: {exc}") from None
    card = ModelCard(source, options, list(input_shape), list(class_names), dict(preprocess or {}))
    return BuiltModel(module, card, trained=False)


def resolve_run_path(source: str) -> Path:
    """The model directory behind ``run:path``: a model dir, a stage dir, or a run dir (its final model)."""
    path = Path(source.partition(":")[2]).expanduser()
    for candidate in (path, path / "model", path / "student" / "model", path / "teacher" / "model"):
        if (candidate / "model.json").is_file():
            return candidate
    raise ModelError(f"{source}: no saved model there (looked for model.json in {path} and its stage folders)")


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

        module = rebuild_hf(directory, card.num_classes, card.options, trust_remote_code)
    elif kind in LIBRARIES:
        # the architecture only: the trained weights come from model.safetensors, never a download
        options = {k: v for k, v in card.options.items() if k != "weights"} | {"pretrained": False}
        module = build_library_model(kind, name, options, tuple(card.input_shape), card.num_classes, card.preprocess)
    else:
        module = BUILTIN[card.architecture](tuple(card.input_shape), card.num_classes, **card.options)
    load_weights(module, directory / "model.safetensors")
    if class_names is not None:
        align_classes(module, card, list(class_names), source)
    return BuiltModel(module, card, trained=True)


def build_library_model(
    kind: str, name: str, options: dict, input_shape: tuple[int, ...], num_classes: int, preprocess: dict | None
) -> nn.Module:
    """A timm, torchvision or Hugging Face model with a new head for ``num_classes``."""
    if kind == "hf":
        from protege.models.hf import build_hf

        return build_hf(name, input_shape, num_classes, preprocess, **options)
    from protege.models.vision import build_timm, build_torchvision

    if (preprocess or {}).get("tokenizer"):
        raise ModelError(f"{kind}:{name} reads images, but the data is token ids; use an hf: model for text")
    builder = build_timm if kind == "timm" else build_torchvision
    return builder(name, input_shape, num_classes, **options)


def example_input(card: ModelCard, batch_size: int = 1) -> torch.Tensor:
    """A batch the model accepts, for tracing, export and timing: token ids (padding) for a text model,
    standard normal values otherwise."""
    shape = (batch_size, *card.input_shape)
    if card.preprocess.get("tokenizer"):
        return torch.zeros(shape, dtype=torch.long)
    return torch.randn(shape)
