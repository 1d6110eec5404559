"""Tiny runs to export and predict from: a tabular CSV (named columns in a stored order, standardised)
and a text CSV (TF-IDF), each with its own train/val/test split column so tests know the test rows."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from protege.config import Recipe
from protege.pipeline import RunResult, run_recipe
from protege.recipe_reader import recipe_from_dict

FEATURES = ["f2", "f0", "f3", "f1"]
"""The stored feature order, deliberately not the file's column order."""

SPLITS = ["train", "train", "train", "val", "test"]


def write_tabular_csv(path: Path, n: int = 150) -> list[dict[str, str]]:
    """Three blobs over four features on very different scales (standardisation matters), plus a label,
    a split and a text column that the model ignores."""
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 4)) * 3
    scale = np.array([1.0, 100.0, 0.01, 10.0])
    offset = np.array([0.0, 500.0, -3.0, 20.0])
    rows = []
    for i in range(n):
        label = i % 3
        x = (centers[label] + rng.normal(size=4)) * scale + offset
        row = {"note": f"row {i}", **{f"f{j}": f"{x[j]:.6g}" for j in range(4)}}
        rows.append({**row, "label": "abc"[label], "split": SPLITS[i % len(SPLITS)]})
    _write(path, rows)
    return rows


def write_text_csv(path: Path, n: int = 90) -> list[dict[str, str]]:
    """Short texts whose words give the class away, with some shared filler words."""
    words = {"pos": ["good", "great", "fine", "nice"], "neg": ["bad", "awful", "poor", "sad"]}
    filler = ["the", "movie", "was", "really", "quite"]
    rng = np.random.default_rng(1)
    rows = []
    for i in range(n):
        label = ["pos", "neg"][i % 2]
        chosen = list(rng.choice(words[label], 2)) + list(rng.choice(filler, 3))
        rng.shuffle(chosen)
        text = " ".join(chosen).capitalize() + "!"
        rows.append({"id": str(i), "text": text, "label": label, "split": SPLITS[i % len(SPLITS)]})
    _write(path, rows)
    return rows


def _write(path: Path, rows: list[dict[str, str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def tabular_recipe(csv_path: Path, **changes) -> Recipe:
    raw = {
        "name": "tabular",
        "data": {
            "source": f"csv:{csv_path}",
            "options": {"feature_columns": FEATURES, "split_column": "split"},
            "standardize": True,
        },
        "student": {
            "model": {"source": "mlp", "hidden": 8},
            "train": {"epochs": 15, "batch_size": 32, "lr": 0.03, "schedule": "constant"},
        },
        "evaluate": {"latency": False},
        **changes,
    }
    return recipe_from_dict(raw)


def text_recipe(csv_path: Path) -> Recipe:
    raw = {
        "name": "text",
        "data": {
            "source": f"csv:{csv_path}",
            "options": {"text_column": "text", "split_column": "split"},
            "standardize": True,
        },
        "student": {
            "model": {"source": "mlp", "hidden": 8},
            "train": {"epochs": 8, "batch_size": 16, "lr": 0.03, "schedule": "constant"},
        },
        "evaluate": {"latency": False},
    }
    return recipe_from_dict(raw)


def tabular_run(directory: Path) -> RunResult:
    directory.mkdir(parents=True, exist_ok=True)
    write_tabular_csv(directory / "data.csv")
    return run_recipe(tabular_recipe(directory / "data.csv"), directory / "run")


def text_run(directory: Path) -> RunResult:
    directory.mkdir(parents=True, exist_ok=True)
    write_text_csv(directory / "text.csv")
    return run_recipe(text_recipe(directory / "text.csv"), directory / "run")


def add_outlier_weight(model_dir: Path) -> None:
    """Give the saved model's first Linear layer one huge weight, on a unit whose bias keeps it from ever
    firing: the float model only loses that unit, while int8 per-tensor quantization (scale = the largest
    weight / 127) rounds every other weight of the layer to zero, so its predictions collapse."""
    from safetensors.torch import load_file, save_file

    path = model_dir / "model.safetensors"
    state = load_file(str(path))
    weight = next(key for key, value in state.items() if key.endswith("weight") and value.ndim == 2)
    bias = weight.removesuffix("weight") + "bias"
    state[weight][0] = 0.0
    state[weight][0, 0] = 1e4
    state[bias][0] = -1e9
    save_file(state, str(path))
