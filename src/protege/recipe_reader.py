"""Reading a recipe: YAML (a file, or a dict), ``--set`` overrides, the schema (protege.config) and the
checks across fields and registries (protege.checks), each failure one line naming the bad field."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from protege.checks import check_recipe
from protege.config import Recipe, apply_override, check_plain, describe_validation_error
from protege.errors import ConfigError
from protege.files import read_text


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Read and validate a recipe file; ``overrides`` are ``dotted.key=value`` strings."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"recipe not found: {path}")
    text = read_text(path, ConfigError)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} is not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a recipe must be a mapping of fields, got {type(raw).__name__}")
    for item in overrides or []:
        apply_override(raw, item)
    return recipe_from_dict(raw, origin=str(path))


def recipe_from_dict(raw: dict, origin: str = "recipe") -> Recipe:
    """Validate a recipe given as a dict, with the same one-line errors as a file."""
    check_plain(raw, origin)
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{origin}: {describe_validation_error(exc, Recipe)}") from None
    check_recipe(recipe, origin)
    return recipe
