"""The run directory's ownership: a marker that protege made it, what protege wrote in it, and a lock.

``.protege-run`` (JSON) says the folder is a protege run and lists the top-level entries protege
writes there (config.yaml, metrics.jsonl, the stage folders, the reports), claimed before they are
written. ``--overwrite`` removes only those entries, never the folder itself nor anything else in it,
and refuses a folder without the marker. ``.protege-lock`` carries an advisory lock (``flock``) for
as long as a process runs in the folder: the kernel drops it when the process ends, however it ends,
so a lock is never stale; the pid written in the file only names the holder in the error.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import shutil
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path

from protege.errors import ConfigError
from protege.files import HELD_LOCKS
from protege.models.store import atomic_write_text, is_temporary

MARKER = ".protege-run"
LOCK = ".protege-lock"
FORMAT = "protege-run"
VERSION = 1


class RunDirectoryInUse(ConfigError):
    """Another process holds the run directory's lock."""


def is_run_directory(path: Path) -> bool:
    """Whether protege made ``path`` (it holds the marker)."""
    return (Path(path) / MARKER).is_file()


def holds_results(path: Path) -> bool:
    """Whether a folder holds anything worth keeping: a run that stopped before its first stage wrote
    anything (its data was refused, say) left only the marker, the lock and config.yaml, and a new run may
    start there without --overwrite."""
    bare = {MARKER, LOCK, "config.yaml"} if is_run_directory(path) else set()
    return any(entry.name not in bare for entry in Path(path).iterdir())


def run_containing(path: Path) -> Path | None:
    """The run directory ``path`` is (or lies inside), or None: commands that only read a run must not
    write into one."""
    path = Path(path).expanduser().resolve()
    for folder in (path, *path.parents):
        if is_run_directory(folder):
            return folder
    return None


def read_marker(path: Path) -> dict:
    """The marker's contents; a marker that is not protege's JSON is a one-line error."""
    marker = Path(path) / MARKER
    try:
        meta = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{marker} is unreadable ({exc}); delete the run directory by hand") from None
    entries = meta.get("entries") if isinstance(meta, dict) else None
    if meta.get("format") != FORMAT or not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise ConfigError(f"{marker} is not a protege run marker; delete the run directory by hand")
    return meta


def claim(path: Path, names: Iterable[str]) -> None:
    """Record top-level ``names`` as protege's in the marker (before they are written), creating it if needed."""
    path = Path(path)
    meta = read_marker(path) if is_run_directory(path) else _new_marker()
    entries = list(dict.fromkeys([*meta["entries"], *names]))
    for name in entries:
        if not _is_plain_name(name):
            raise ValueError(f"run directory entry {name!r} must be a plain file or folder name")
    if entries != meta["entries"] or not is_run_directory(path):
        atomic_write_text(path / MARKER, json.dumps({**meta, "entries": entries}, indent=1))


def _new_marker() -> dict:
    from protege import __version__

    created = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    return {"format": FORMAT, "version": VERSION, "protege": __version__, "created": created, "entries": []}


def _is_plain_name(name: str) -> bool:
    return bool(name) and name not in (".", "..", MARKER, LOCK) and "/" not in name and "\\" not in name


def clear(path: Path) -> list[str]:
    """Remove what protege wrote in the run directory ``path`` (the marker's entries and their
    temporary files); everything else stays. Returns the names removed."""
    path = Path(path)
    entries = read_marker(path)["entries"]
    removed = []
    for name in entries:
        if not _is_plain_name(name):
            continue  # a hand-edited marker never reaches outside the folder
        target = path / name
        if _remove(target):
            removed.append(name)
    for leftover in path.iterdir():
        if is_temporary(leftover) and any(leftover.name.startswith(f".{name}.") for name in entries):
            _remove(leftover)
    return removed


def _remove(target: Path) -> bool:
    if target.is_symlink() or target.is_file():
        target.unlink()  # a link goes, never what it points at
        return True
    if target.is_dir():
        shutil.rmtree(target)
        return True
    return False


def remove_temporary(path: Path) -> list[Path]:
    """Delete the temporary files and folders a killed process left anywhere under ``path`` (their names
    start with a dot and end in ``.tmp``: atomic writes, checkpoint staging, partial caches)."""
    found = []
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            candidate = Path(root) / name
            if is_temporary(candidate):
                found.append(candidate)
        dirs[:] = [d for d in dirs if not is_temporary(Path(root) / d)]
    for candidate in found:
        _remove(candidate)
    return found


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the run directory's lock while the block runs; a second process is refused in one line."""
    path = Path(path)
    lock_path = path / LOCK
    try:
        handle = open(lock_path, "a+", encoding="utf-8")  # noqa: SIM115 (held open for the whole block)
    except OSError as exc:
        raise ConfigError(f"cannot write to run directory {path}: {exc.strerror or exc}") from None
    try:
        if not _try_lock(handle):
            raise RunDirectoryInUse(
                f"run directory {path} is in use by another protege process ({_holder(lock_path)}); "
                "wait for it to finish or use another --output"
            )
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": _now()}))
        handle.flush()
        HELD_LOCKS.add(handle.fileno())
        yield
    finally:
        HELD_LOCKS.discard(handle.fileno())
        handle.close()  # closing the file drops the lock


def _try_lock(handle) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _holder(lock_path: Path) -> str:
    try:
        meta = json.loads(lock_path.read_text(encoding="utf-8"))
        return f"pid {meta['pid']} on {meta['host']}, since {meta['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
