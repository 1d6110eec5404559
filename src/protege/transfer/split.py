"""Where a model's head, blocks and stem are, found by module path, so any timm, torchvision or Hugging Face
model gets parameter groups without per-architecture code.

Groups are listed from the head down (``head``, ``neck``, the blocks top to bottom, ``stem``); each is
named by its module path, so the names, and the optimizer's structure, are the same in every run.
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field

from torch import nn

from protege.errors import ConfigError
from protege.models.taps import module_paths


@dataclass
class Group:
    """Parameters trained together at one learning rate; ``depth`` counts blocks down from the head (0)."""

    name: str
    depth: int
    params: dict[str, nn.Parameter] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return sum(p.numel() for p in self.params.values())


@dataclass
class ModelSplit:
    """A model cut into groups from the head down, plus where the head and blocks were found."""

    head_path: str
    block_paths: list[str]
    groups: list[Group]
    blocks_from: str

    @property
    def names(self) -> list[str]:
        return [g.name for g in self.groups]

    def group_of_module(self, path: str) -> str | None:
        """The group a module's parameters belong to (the nearest ancestor's for a module without any)."""
        for group in self.groups:
            if any(is_within(name, path) for name in group.params):
                return group.name
        parent = path.rpartition(".")[0]
        return self.group_of_module(parent) if parent else None


def is_within(name: str, path: str) -> bool:
    """Whether the parameter or module ``name`` is ``path`` itself or lies inside it."""
    return name == path or name.startswith(path + ".")


def closest_paths(model: nn.Module, wanted: str, n: int = 3) -> str:
    valid = module_paths(model)
    close = difflib.get_close_matches(wanted, valid, n=n, cutoff=0.4) or valid[:n]
    return ", ".join(close)


def find_head(model: nn.Module, head: str | None = None) -> str:
    """The head's module path: the ``head`` option, timm's ``get_classifier()``, or a ``head`` attribute."""
    modules = dict(model.named_modules())
    if head is not None:
        if head not in modules or not head:
            raise ConfigError(
                f"head {head!r} is no module of {type(model).__name__}; closest: {closest_paths(model, head)}"
            )
        return head
    if callable(getattr(model, "get_classifier", None)):  # timm's, which is the classifier inside a larger head
        classifier = model.get_classifier()
        for path, module in modules.items():
            if path and module is classifier:
                return path
    if isinstance(getattr(model, "head", None), nn.Module) and any(True for _ in model.head.parameters()):
        return "head"
    last = [p for p in modules if p and "." not in p][-3:]
    raise ConfigError(
        f"cannot tell the head of {type(model).__name__}; set the strategy option head: <module path> "
        f"(its last modules: {', '.join(last)})"
    )


def match_blocks(model: nn.Module, pattern: str, head_path: str) -> list[str]:
    """Module paths matching ``pattern``: a glob whose ``*`` is one path component (``encoder.layer.*``),
    or a container path whose children with parameters are the blocks (``layers``)."""
    paths = [p for p in module_paths(model) if not is_within(p, head_path)]
    if any(c in pattern for c in "*?["):
        parts = pattern.split(".")
        found = [
            p for p in paths if len(p.split(".")) == len(parts) and all(map(fnmatch.fnmatchcase, p.split("."), parts))
        ]
    else:
        modules = dict(model.named_modules())
        container = modules.get(pattern) if pattern in paths else None
        found = []
        if container is not None:
            found = [f"{pattern}.{name}" for name, child in container.named_children() if _has_params(child)]
    found = _outermost(found)
    if not found:
        raise ConfigError(
            f"blocks {pattern!r} matches no module of {type(model).__name__}; closest: {closest_paths(model, pattern)}"
        )
    return found


def _outermost(paths: list[str]) -> list[str]:
    kept: list[str] = []
    for path in paths:
        if not any(is_within(path, outer) for outer in kept):
            kept.append(path)
    return kept


def _has_params(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())


def guess_blocks(model: nn.Module, head_path: str) -> list[str]:
    """The children of the largest ModuleList outside the head (``encoder.layer``, ``layers``, ``h``), else
    the top-level children in order (through a lone child such as a wrapped backbone or ``features``)."""
    best: tuple[int, list[str]] = (0, [])
    for path, module in model.named_modules():
        if not isinstance(module, nn.ModuleList) or is_within(path, head_path):
            continue
        children = [f"{path}.{name}" for name, child in module.named_children() if _has_params(child)]
        size = sum(p.numel() for p in module.parameters())
        if len(children) >= 2 and size > best[0]:
            best = (size, children)
    if best[1]:
        return best[1]
    prefix, module = "", model
    while True:
        children = [
            (f"{prefix}{name}", child)
            for name, child in module.named_children()
            if _has_params(child) and not is_within(f"{prefix}{name}", head_path)
        ]
        if len(children) != 1:
            return [path for path, _ in children]
        path, module = children[0]
        prefix = path + "."


def split_model(model: nn.Module, head: str | None = None, blocks: str | None = None) -> ModelSplit:
    """Cut ``model`` into head, neck, blocks (top down) and stem groups by module path.

    Blocks come from the ``blocks`` pattern, else timm's ``group_matcher``, else the largest container of
    blocks; parameters below the first block form ``stem``, those above the last (a final norm) ``neck``.
    """
    head_path = find_head(model, head)
    params = dict(model.named_parameters())
    head_params = {n: p for n, p in params.items() if is_within(n, head_path)}
    if blocks is None and callable(getattr(model, "group_matcher", None)):
        return _split_with_timm(model, head_path, head_params, params)
    block_paths = match_blocks(model, blocks, head_path) if blocks is not None else guess_blocks(model, head_path)
    source = f"blocks {blocks!r}" if blocks is not None else "guessed from module paths"
    block_params: dict[str, dict[str, nn.Parameter]] = {path: {} for path in block_paths}
    stem: dict[str, nn.Parameter] = {}
    neck: dict[str, nn.Parameter] = {}
    seen_block = False
    for name, param in params.items():
        if name in head_params:
            continue
        owner = next((path for path in block_paths if is_within(name, path)), None)
        if owner is not None:
            block_params[owner][name] = param
            seen_block = True
        else:
            (neck if seen_block else stem)[name] = param
    groups = [Group("head", 0, head_params)]
    if neck:
        groups.append(Group("neck", 0, neck))
    for depth, path in enumerate(reversed(block_paths), start=1):
        if block_params[path]:
            groups.append(Group(path, depth, block_params[path]))
    if stem:
        groups.append(Group("stem", len(block_paths) + 1, stem))
    return ModelSplit(head_path, block_paths, groups, source)


def _split_with_timm(
    model: nn.Module, head_path: str, head_params: dict[str, nn.Parameter], params: dict[str, nn.Parameter]
) -> ModelSplit:
    """timm's own coarse grouping (stem, stages or blocks, head), each group named by its common path."""
    from timm.models import group_parameters

    layers = group_parameters(model, model.group_matcher(coarse=True))
    ordered = sorted(layers.items())
    top = max(layer for layer, _ in ordered)
    groups = [Group("head", 0, head_params)]
    block_paths: list[str] = []
    neck: dict[str, nn.Parameter] = {}
    for layer, names in reversed(ordered):
        own = {n: params[n] for n in names if n not in head_params}
        if not own:
            continue
        if layer == top:  # timm puts the final norm with the head
            neck.update(own)
            continue
        name = "stem" if layer == ordered[0][0] else _covering_path(list(own), taken=set(block_paths))
        groups.append(Group(name, top - layer, own))
        if name != "stem":
            block_paths.insert(0, name)
    if neck:
        groups.insert(1, Group("neck", 0, neck))
    return ModelSplit(head_path, block_paths, groups, "timm group_matcher")


def _covering_path(names: list[str], taken: set[str]) -> str:
    """The longest module path holding all of ``names`` (``layer3``), else more than half of them
    (``blocks.3`` for a block grouped with the final norm)."""
    candidates = {".".join(name.split(".")[:n]) for name in names for n in range(1, name.count(".") + 1)}
    candidates -= taken
    for enough in (len(names), len(names) // 2 + 1):
        covering = [c for c in candidates if sum(is_within(name, c) for name in names) >= enough]
        if covering:
            return max(covering, key=lambda c: (c.count("."), c))
    return f"group.{names[0]}"
