"""The bad-input catalogue, one module per area: each module's ``CASES`` maps a case name to
``(make, expected)``, where ``make(tmp)`` builds the inputs in a fresh folder and returns the command line,
and ``expected`` is a part of the one-line error; a third item, ``patch(monkeypatch)``, changes the process
for that run only (a package made missing). ``tests/test_bad_inputs.py`` runs every case.

This package holds the helpers the cases share.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

from protege.models import ModelCard, save_model
from protege.models.builtin import mlp

BASE = {
    "name": "bad",
    "data": {"source": "digits"},
    "student": {"model": {"source": "mlp", "hidden": 8}, "train": {"epochs": 1, "batch_size": 256}},
    "evaluate": {"latency": False},
}


def recipe(tmp: Path, changes: dict | None = None, raw: dict | None = None) -> list[str]:
    """A recipe file: BASE with top-level ``changes`` (dotted keys reach into blocks), or ``raw`` as is."""
    body = json.loads(json.dumps(raw if raw is not None else BASE))
    for key, value in (changes or {}).items():
        *parents, last = key.split(".")
        node = body
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    path = tmp / "recipe.yaml"
    path.write_text(yaml.safe_dump(body))
    return ["run", str(path), "-o", str(tmp / "run")]


def written(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def csv_data(tmp: Path, text: str, **options) -> list[str]:
    (tmp / "data.csv").write_text(text)
    return recipe(tmp, {"data": {"source": f"csv:{tmp / 'data.csv'}", "options": options}})


def npz_data(tmp: Path, **arrays) -> list[str]:
    np.savez(tmp / "data.npz", **arrays)
    return recipe(tmp, {"data": {"source": f"npz:{tmp / 'data.npz'}"}})


def saved_model(tmp: Path, classes: int) -> Path:
    directory = tmp / "other_model"
    names = [str(i) for i in range(classes)]
    save_model(mlp((1, 8, 8), classes, hidden=4), ModelCard("mlp", {"hidden": 4}, [1, 8, 8], names), directory)
    return directory
