"""protege: move knowledge between neural networks (transfer learning and knowledge distillation).

The names below are imported on first use, so ``protege --help`` and ``import protege`` stay fast: torch,
transformers and the rest load only when a command or the API needs them.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "ProtegeError": "protege.errors",
    "Recipe": "protege.config",
    "load_recipe": "protege.recipe_reader",
    "Result": "protege.api",
    "distill": "protege.api",
    "export": "protege.api",
    "predict": "protege.api",
    "train": "protege.api",
    "run_recipe": "protege.pipeline",
}

__all__ = [
    "ProtegeError",
    "Recipe",
    "Result",
    "__version__",
    "distill",
    "export",
    "load_recipe",
    "predict",
    "run_recipe",
    "train",
]

if TYPE_CHECKING:
    from protege.api import Result, distill, export, predict, train
    from protege.config import Recipe
    from protege.errors import ProtegeError
    from protege.pipeline import run_recipe
    from protege.recipe_reader import load_recipe


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'protege' has no attribute {name!r}")


class _Package(types.ModuleType):
    """Importing the subpackage ``protege.distill`` binds it as an attribute of this package; the API
    function ``protege.distill`` keeps the name (the subpackage stays importable by its full name)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _LAZY and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
