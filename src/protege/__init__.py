"""protege: move knowledge between neural networks (transfer learning and knowledge distillation)."""

__version__ = "0.1.0"

from protege.api import Result, distill, export, predict, train
from protege.config import Recipe, load_recipe
from protege.errors import ProtegeError
from protege.pipeline import run_recipe

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
