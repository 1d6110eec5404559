"""The boundary where protege reads a user's text files and writes to a user's paths: another encoding, a
folder where a file belongs or a place that cannot be written is a one-line error, found before any work."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from protege.errors import ConfigError, ProtegeError


def read_text(path: Path, error: type[ProtegeError]) -> str:
    """A UTF-8 text file (a byte-order mark dropped, line endings untouched); another encoding, or a file
    that cannot be read, is ``error`` with a one-line message that says how to fix it."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise error(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start}); save it as UTF-8") from None


def check_writable_file(path: Path, what: str = "output") -> None:
    """Refuse an output file that is a folder, lies under a file, or sits where nothing can be written,
    before the work that would fill it; the folders it needs may be missing (they are made)."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{what} {path} is a folder; give a file name")
    _check_writable_parent(path, what)


def check_writable_dir(path: Path, what: str = "output") -> None:
    """Refuse an output folder that is a file, lies under a file, or cannot be written."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{what} {path} is a file; give a folder")
    if path.is_dir():
        _check_access(path, path, what)
    else:
        _check_writable_parent(path, what)


def _check_writable_parent(path: Path, what: str) -> None:
    """The nearest folder that exists above ``path`` must be a folder protege may create files in."""
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"{what} {path}: {parent} is a file, not a folder")
    _check_access(parent, path, what)


def _check_access(folder: Path, path: Path, what: str) -> None:
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} {path}: no permission to write in {folder}; choose another place")


HELD_LOCKS: set[int] = set()
"""File descriptors of the run-directory locks this process holds (protege.rundir adds and removes them)."""


def release_inherited_locks() -> None:
    """Close, in a forked child (a DataLoader worker), the lock descriptors it inherited: an ``flock`` lives
    as long as any process holds its file open, so a worker outliving a killed run would keep its run
    directory locked until it noticed (about 5 s later) and a prompt ``--resume`` would be refused."""
    for fd in list(HELD_LOCKS):
        with contextlib.suppress(OSError):
            os.close(fd)
    HELD_LOCKS.clear()
