"""Errors a user can cause: each carries a one-line message the CLI prints without a traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ProtegeError(Exception):
    """Base class of every error caused by user input (recipe, data, model sources, files)."""


class ConfigError(ProtegeError):
    """A recipe or a command-line option is invalid."""


class DataError(ProtegeError):
    """A data source cannot be read or does not fit the task."""


class ModelError(ProtegeError):
    """A model source cannot be built or loaded, or does not fit the data."""


class CheckpointError(ProtegeError):
    """A checkpoint or run directory is missing, corrupt or incompatible."""


class QuantizationError(ModelError):
    """A quantized model lost more of its test metric than the user allows; nothing was written."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ' (did you mean "x"?)' for the closest choice, or '' when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""
