"""The one training loop (``fit``) and its parts: the run's state (run.py), the step that owns the
forward (step.py), the batches (batches.py), devices and the optimizer (devices.py), and what an epoch
leaves behind (records.py). Hooks (protege.hooks) act at the loop's named moments.

Hugging Face Accelerate carries device placement, mixed precision, gradient accumulation and
multi-process training; this package adds nothing of its own for distribution.
"""

from protege.engine.batches import as_batch
from protege.engine.devices import (
    build_optimizer,
    decay_groups,
    make_accelerator,
    resolve_mixed_precision,
    uses_channels_last,
)
from protege.engine.devices import lean_optimizer as _lean_optimizer
from protege.engine.loop import fit
from protege.engine.records import TrainingError
from protege.engine.run import FitResult, TrainingRun
from protege.engine.step import RDropStep, Step, StepResult, SupervisedStep

__all__ = [
    "FitResult",
    "RDropStep",
    "Step",
    "StepResult",
    "SupervisedStep",
    "TrainingError",
    "TrainingRun",
    "_lean_optimizer",
    "as_batch",
    "build_optimizer",
    "decay_groups",
    "fit",
    "make_accelerator",
    "resolve_mixed_precision",
    "uses_channels_last",
]
