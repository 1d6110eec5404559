"""The terminal: log lines and progress bars on stderr, result tables on stdout."""

from __future__ import annotations

import os

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

log_console = Console(stderr=True, highlight=False)
out_console = Console(highlight=False)


def quiet() -> bool:
    """PROTEGE_QUIET=1 silences log lines and bars (tests, scripted use)."""
    return os.environ.get("PROTEGE_QUIET", "") not in ("", "0")


def log(message: str) -> None:
    if not quiet():
        log_console.print(message)


def progress_bar() -> Progress:
    """A bar with live text; drawn only on an interactive terminal."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
        console=log_console,
        disable=quiet() or not log_console.is_terminal,
        transient=False,
    )
