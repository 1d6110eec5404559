"""Adaptation recipes that cannot work: a target whose inputs the model cannot read (another shape, token
ids), target classes the source lacks, unknown methods and options, a method needing BatchNorm on a model
without it, shifts that do not fit the data, and kinds of run adaptation does not combine with."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from tests.catalogue import recipe

QUICK = {"epochs": 1, "batch_size": 256}
CNN = {"model": {"source": "cnn2d", "width": 4, "depth": 1}, "train": QUICK}
MLP = {"model": {"source": "mlp", "hidden": 8}, "train": QUICK}
NOISE = {"target": {"shift": "noise"}}
FORGET = {"forget": {"fraction": 0.1}, "methods": ["finetune"]}


def adaptation(tmp: Path, student: dict | None = None, data: dict | None = None, **block) -> list[str]:
    """A digits recipe with an adaptation block (rotated digits, source-only and DANN by default)."""
    block = {"target": {"shift": "rotate"}, "methods": ["source_only", "dann"], **block}
    return recipe(tmp, {"adaptation": block, "student": student or CNN, "data": data or {"source": "digits"}})


def npz_target(tmp: Path, shape: tuple[int, ...], labels: list[str] | None = None, **block) -> list[str]:
    """A target read from an npz file of 400 inputs shaped ``shape`` (labels: digit names by default)."""
    rng = np.random.default_rng(0)
    names = labels or [str(i % 10) for i in range(400)]
    np.savez(tmp / "target.npz", x=rng.random((400, *shape)).astype(np.float32), y=np.array(names))
    return adaptation(tmp, target={"source": f"npz:{tmp / 'target.npz'}"}, **block)


CASES: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "target inputs of another shape than the source's": (
        lambda t: npz_target(t, (1, 16, 16)),
        "its inputs have shape (1, 16, 16), the source's (digits) (1, 8, 8)",
    ),
    "target with a class the source lacks": (
        lambda t: npz_target(t, (1, 8, 8), labels=[str(i % 10) for i in range(380)] + ["cat"] * 20),
        "class 'cat' is not one of the source's classes",
    ),
    "unknown adaptation method": (
        lambda t: adaptation(t, methods=["source_only", "dan"]),
        "adaptation.methods[1].name: unknown adaptation method 'dan' (did you mean \"dann\"?)",
    ),
    "unknown option of a method": (
        lambda t: adaptation(t, methods=[{"name": "cdan", "entropie": True}]),
        "adaptation method 'cdan' has no option 'entropie' (did you mean \"entropy\"?)",
    ),
    "a method listed twice": (
        lambda t: adaptation(t, methods=["dann", "dann"]),
        "method 'dann' is listed twice",
    ),
    "adabn on a model without BatchNorm": (
        lambda t: adaptation(t, MLP, methods=["adabn"]),
        "adabn re-estimates BatchNorm statistics, and the student (mlp) has no BatchNorm layer",
    ),
    "rotating inputs that are no images": (
        lambda t: adaptation(t, MLP, {"source": "mnist1d", "options": {"num_samples": 200}}),
        "adaptation.target.shift rotate turns images, and these inputs have shape (1, 40)",
    ),
    "target given both as a source and as a shift": (
        lambda t: adaptation(t, target={"shift": "noise", "source": "digits"}),
        "target: give either source (a data source of its own) or shift (of the recipe's data)",
    ),
    "unknown target source": (
        lambda t: adaptation(t, target={"source": "digitz"}),
        "adaptation.target.source: unknown data source 'digitz'",
    ),
    "adaptation with a continual stream": (
        lambda t: recipe(t, {"adaptation": NOISE, "continual": {"experiences": 2}, "student": CNN}),
        "adaptation and continual are two kinds of run; give one of them",
    ),
    "adaptation with unlearning": (
        lambda t: recipe(t, {"adaptation": NOISE, "unlearning": FORGET, "student": CNN}),
        "adaptation and unlearning are two kinds of run; give one of them",
    ),
    "adaptation with a teacher": (
        lambda t: recipe(t, {"adaptation": NOISE, "teacher": CNN, "student": CNN}),
        "adaptation: teacher does not apply to an adaptation run; remove it",
    ),
    "a distillation objective the methods would not use": (
        lambda t: adaptation(t, {**CNN, "objective": {"name": "ce", "label_smoothing": 0.1}}),
        "the adaptation methods train with the source's cross-entropy plus their own term",
    ),
    "selecting on a target validation split that is empty": (
        lambda t: adaptation(t, data={"source": "digits", "val_fraction": 0}, select="target_val"),
        "target_val selects on the shifted validation split, and data.val_fraction is 0",
    ),
    "feature layer that is no module of the model": (
        lambda t: adaptation(t, features="features.9"),
        "no module 'features.9' in Classifier",
    ),
}
