"""metrics.jsonl: one JSON line per epoch per stage, appended as training goes.

A process killed while appending can leave a torn last line; readers skip it, and a resumed stage
rewrites the file from its checkpoint's history, so the torn line never reaches a report.
"""

from __future__ import annotations

import json
from pathlib import Path

from protege.models.store import atomic_write_text


def append_record(path: Path, record: dict) -> None:
    """Add one epoch's record at the end of the file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def read_records(path: Path) -> list[dict]:
    """Every whole record in the file, in order; lines that are not a JSON object (torn) are skipped."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def rewrite_stage(path: Path, stage: str, history: list[dict]) -> None:
    """On resume, keep other stages' records and this stage's up to the checkpoint, nothing after."""
    kept = [record for record in read_records(path) if record.get("stage") != stage]
    atomic_write_text(path, "".join(json.dumps(record) + "\n" for record in [*kept, *history]))
