"""protege: move knowledge between neural networks (transfer learning and knowledge distillation).

The names below are imported on first use, so ``protege --help`` and ``import protege`` stay fast: torch,
transformers and the rest load only when a command or the API needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "ProtegeError": "protege.errors",
    "Recipe": "protege.config",
    "load_recipe": "protege.config",
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
    from protege.config import Recipe, load_recipe
    from protege.errors import ProtegeError
    from protege.pipeline import run_recipe


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'protege' has no attribute {name!r}")
