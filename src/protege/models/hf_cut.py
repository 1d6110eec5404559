"""Smaller transformers cut from a pretrained one: the ``hf:`` options ``num_hidden_layers``, ``hidden_size``,
``intermediate_size``, ``num_attention_heads`` and ``layers_from``.

The student is the pretrained model's own architecture (its config with the overrides, built by
``AutoModel.from_config``), started from the pretrained weights where shapes allow, as DistilBERT was
(Sanh et al. 2019): student layer i from pretrained layer ``layers_from[i]``, by default every
(N // k)-th of the N pretrained layers (one in two when halving, DistilBERT's rule), and every other
module (embeddings, final norms) from the module of the same name. A module whose tensors do not all fit
keeps its fresh initialisation, never a slice of a pretrained tensor, and the log line names it.
"""

from __future__ import annotations

import copy
from typing import Any

from torch import nn

from protege.errors import ModelError

CUT_OPTIONS = ("num_hidden_layers", "hidden_size", "intermediate_size", "num_attention_heads")
"""The config fields an ``hf:`` model block may override, by their Hugging Face names."""


def cut_requested(options: dict) -> bool:
    """Whether an ``hf:`` model block asks for another architecture than the pretrained one."""
    return any(options.get(name) is not None for name in (*CUT_OPTIONS, "layers_from"))


def check_cut_options(options: dict, what: str) -> None:
    """What the options say on their own, before any config is read: ``layers_from`` agrees with
    ``num_hidden_layers`` and needs pretrained weights, and the heads divide the hidden size."""
    layers_from, depth = options.get("layers_from"), options.get("num_hidden_layers")
    if layers_from is not None:
        if options.get("pretrained", True) is False:
            raise ModelError(f"{what}: layers_from picks pretrained layers to copy; remove it or set pretrained: true")
        if depth is not None and len(layers_from) != depth:
            raise ModelError(
                f"{what}: layers_from names {len(layers_from)} layers but num_hidden_layers is {depth}; "
                f"name one pretrained layer for each student layer"
            )
    hidden, heads = options.get("hidden_size"), options.get("num_attention_heads")
    if hidden is not None and heads is not None:
        _check_heads(int(hidden), int(heads), what)


def _check_heads(hidden: int, heads: int, what: str) -> None:
    if hidden % heads:
        fitting = ", ".join([str(n) for n in range(1, hidden + 1) if hidden % n == 0][:10])
        raise ModelError(
            f"{what}: num_attention_heads {heads} does not divide hidden_size {hidden}; "
            f"pick a number of heads that does ({fitting})"
        )


def has_field(config: Any, name: str) -> bool:
    """Whether a Hugging Face config has ``name``, as a field or through its ``attribute_map`` (DistilBERT's
    ``n_layers`` answers to ``num_hidden_layers``)."""
    return name in config.to_dict() or name in getattr(config, "attribute_map", {})


def cut_config(config: Any, options: dict, what: str) -> tuple[Any, list[int] | None]:
    """A copy of ``config`` with the overrides, and the pretrained layer each student layer starts from
    (None with ``pretrained: false``); a name the config lacks or a layer out of range is a one-line error."""
    check_cut_options(options, what)
    asked = {name: int(options[name]) for name in CUT_OPTIONS if options.get(name) is not None}
    layers_from = options.get("layers_from")
    if layers_from is not None:
        asked.setdefault("num_hidden_layers", len(layers_from))
    for name in asked:
        if not has_field(config, name):
            raise ModelError(f"{what}: its {config.model_type} config has no {name}; leave {name} out for this model")
    student = copy.deepcopy(config)
    for name, value in asked.items():
        setattr(student, name, value)
    if has_field(student, "hidden_size") and has_field(student, "num_attention_heads"):
        _check_heads(int(student.hidden_size), int(student.num_attention_heads), what)
    if options.get("pretrained", True) is False:
        return student, None
    if not has_field(config, "num_hidden_layers"):
        return student, None  # no layer count to map: modules are copied by name alone
    return student, source_layers(int(config.num_hidden_layers), int(student.num_hidden_layers), layers_from, what)


def source_layers(depth: int, layers: int, layers_from: list[int] | None, what: str) -> list[int]:
    """The pretrained layer (of ``depth``) each of the student's ``layers`` starts from: ``layers_from``
    as given (in range, repeats allowed), or every (depth // layers)-th layer from the first."""
    if layers_from is not None:
        outside = [int(i) for i in layers_from if int(i) >= depth]
        if outside:
            raise ModelError(
                f"{what}: layers_from names layer {outside[0]}, but the pretrained model has layers 0 to {depth - 1}"
            )
        return [int(i) for i in layers_from]
    if layers > depth:
        raise ModelError(
            f"{what}: num_hidden_layers {layers} is more than the {depth} pretrained layers; name the layer each "
            f"starts from with layers_from (a layer may repeat), or set pretrained: false"
        )
    stride = depth // layers
    return [i * stride for i in range(layers)]


def layer_list(model: nn.Module, depth: int, what: str) -> str:
    """The path of a model's list of ``depth`` transformer layers (``encoder.layer``, ``transformer.layer``)."""
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == depth:
            return name
    raise ModelError(
        f"{what}: found no list of its {depth} layers to cut; cut models whose layers are one list "
        f"(BERT, RoBERTa, DistilBERT, MiniLM), or set pretrained: false"
    )


def renamed(name: str, path: str, layers: list[int]) -> str:
    """The pretrained tensor a student tensor starts from: ``path.i.rest`` from ``path.layers[i].rest``."""
    prefix = path + "."
    if not name.startswith(prefix):
        return name
    index, _, rest = name.removeprefix(prefix).partition(".")
    return f"{prefix}{layers[int(index)]}.{rest}"


def copy_pretrained(student: nn.Module, pretrained: nn.Module, layers: list[int] | None, what: str) -> str:
    """Copy into ``student`` every module of ``pretrained`` whose tensors all fit (layers renamed by
    ``layers``), leave the rest as initialised, and return the log line that says which is which."""
    path = _layer_path(student, pretrained, layers, what)
    source, own = pretrained.state_dict(), student.state_dict()
    modules: dict[str, list[str]] = {}
    for name in own:
        modules.setdefault(name.rpartition(".")[0], []).append(name)
    copied: dict[str, int] = {}
    fresh: dict[str, int] = {}
    for module, names in modules.items():
        pairs = {name: renamed(name, path, layers) if layers is not None else name for name in names}
        if all(src in source and source[src].shape == own[name].shape for name, src in pairs.items()):
            own.update({name: source[src] for name, src in pairs.items()})
            copied[module] = len(names)
        else:
            fresh[module] = len(names)
    student.load_state_dict(own)
    changes = [
        f"{name} {getattr(pretrained.config, name)}→{getattr(student.config, name)}"
        for name in CUT_OPTIONS
        if has_field(student.config, name) and getattr(pretrained.config, name) != getattr(student.config, name)
    ]
    taken = f"layers from pretrained layers {', '.join(map(str, layers))}" if layers else "modules copied by name"
    return f"{what}: cut ({', '.join(changes) or 'same sizes'}), {taken}; {_summary(copied, fresh, path)}"


def _layer_path(student: nn.Module, pretrained: nn.Module, layers: list[int] | None, what: str) -> str:
    """Where both models keep their layers ('' when no layers are mapped); the student's list must hold one
    layer per entry of ``layers``."""
    if layers is None:
        return ""
    path = layer_list(pretrained, int(pretrained.config.num_hidden_layers), what)
    own = dict(student.named_modules()).get(path)
    if not isinstance(own, nn.ModuleList) or len(own) != len(layers):
        raise ModelError(f"{what}: the cut model has no list of {len(layers)} layers at {path}; it cannot be cut")
    return path


def _summary(copied: dict[str, int], fresh: dict[str, int], path: str) -> str:
    """Which modules were copied and which started fresh, each named as briefly as is still exact
    (``embeddings`` when all its modules share the fate), the layer number shown as ``*``."""
    if not fresh:
        return f"copied every tensor ({sum(copied.values())})"
    if not copied:
        return f"every tensor ({sum(fresh.values())}) started fresh, as their shapes differ"
    fates = {_pattern(m, path): True for m in copied} | {_pattern(m, path): False for m in fresh}
    mixed = {_pattern(m, path) for m in copied} & {_pattern(m, path) for m in fresh}
    names = {True: _shortest(fates, mixed, True), False: _shortest(fates, mixed, False)}
    return (
        f"copied {sum(copied.values())} tensors ({', '.join(names[True])}); {sum(fresh.values())} started fresh, "
        f"as their shapes differ ({', '.join(names[False])})"
    )


def _pattern(module: str, path: str) -> str:
    """``encoder.layer.3.output.dense`` -> ``encoder.layer.*.output.dense``: one name for every layer's module."""
    prefix = path + "."
    if not path or not module.startswith(prefix):
        return module
    _, _, rest = module.removeprefix(prefix).partition(".")
    return f"{prefix}*" + (f".{rest}" if rest else "")


def _shortest(fates: dict[str, bool], mixed: set[str], fate: bool) -> list[str]:
    """The modules of one fate, each cut back to its shortest prefix under which every module shares it."""
    shown: dict[str, None] = {}
    for pattern, own in fates.items():
        if own != fate and pattern not in mixed:
            continue
        parts = pattern.split(".")
        for length in range(1, len(parts) + 1):
            prefix = ".".join(parts[:length])
            under = [p for p in fates if p == prefix or p.startswith(prefix + ".")]
            if all(fates[p] == fate and p not in mixed for p in under) or length == len(parts):
                shown[prefix] = None
                break
    return list(shown)
