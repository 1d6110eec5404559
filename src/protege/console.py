"""The terminal: log lines and progress bars on stderr, result tables on stdout."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from protege.distributed import is_main_process


def _width(stream) -> int | None:
    """Rich wraps at 80 columns when output is not a terminal; logs and pipes read better unwrapped."""
    return None if stream.isatty() or "COLUMNS" in os.environ else 160


log_console = Console(stderr=True, highlight=False, width=_width(sys.stderr))
out_console = Console(highlight=False, width=_width(sys.stdout))


def quiet() -> bool:
    """PROTEGE_QUIET=1 silences log lines and bars (tests, scripted use); processes other than the
    main one are always quiet."""
    return os.environ.get("PROTEGE_QUIET", "") not in ("", "0") or not is_main_process()


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


@contextmanager
def without_log(logger: str, prefix: str) -> Iterator[None]:
    """Drops one library logger's messages that start with ``prefix`` while a model is exported: known
    harmless ones (the callers say why), which would otherwise look like a failed export."""

    class Drop(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return not record.getMessage().startswith(prefix)

    target, drop = logging.getLogger(logger), Drop()
    target.addFilter(drop)
    try:
        yield
    finally:
        target.removeFilter(drop)
