"""Tampered model cards (model.json, the card inside an exported file) and tampered training state
(checkpoints/*/state.json, trainer.pt, the latest pointer): refused in one line where they are read."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tests.catalogue import recipe, saved_model

from protege.cli import main

KD = {"name": "kd"}


def tampered(tmp: Path, **changes) -> Path:
    """A saved 10-class MLP (inputs 1×8×8, as digits) whose model.json has ``changes`` at the top level;
    ``preprocess`` and ``options`` changes are merged into the card's own blocks."""
    directory = saved_model(tmp, 10)
    card = json.loads((directory / "model.json").read_text())
    for key, value in changes.items():
        card[key] = {**card[key], **value} if key in ("preprocess", "options") and isinstance(value, dict) else value
    (directory / "model.json").write_text(json.dumps(card))
    return directory


def predict(directory: Path) -> list[str]:
    np.save(directory.parent / "x.npy", np.zeros((2, 1, 8, 8), dtype=np.float32))
    return ["predict", str(directory), str(directory.parent / "x.npy")]


def export(directory: Path) -> list[str]:
    return ["export", str(directory), "-f", "safetensors", "-o", str(directory.parent / "exported.safetensors")]


def evaluate(directory: Path) -> list[str]:
    return ["evaluate", str(directory), "--data", "digits", "--no-latency", "--no-html"]


def as_teacher(tmp: Path, directory: Path) -> list[str]:
    return recipe(tmp, {"teacher": {"model": {"source": f"run:{directory}"}}, "student.objective": KD})


def tampered_export(tmp: Path) -> list[str]:
    """An exported safetensors file whose embedded card claims a hidden width the weights do not have."""
    from safetensors.torch import load_file, save_file

    directory = saved_model(tmp, 10)
    assert main(export(directory)) == 0
    path = directory.parent / "exported.safetensors"
    card = json.loads((directory / "model.json").read_text())
    card["options"] = {"hidden": -4}
    save_file(load_file(str(path)), str(path), metadata={"protege": json.dumps(card)})
    np.save(tmp / "x.npy", np.zeros((2, 64), dtype=np.float32))
    return ["predict", str(path), str(tmp / "x.npy")]


def interrupted(tmp: Path, change: Callable[[Path], None]) -> list[str]:
    """A finished run made to look interrupted (its student model gone), whose checkpoints ``change`` edits."""
    argv = recipe(tmp)
    assert main(argv) == 0
    for checkpoint in (tmp / "run" / "student" / "checkpoints").glob("step-*"):
        change(checkpoint)
    (tmp / "run" / "student" / "model" / "model.json").unlink()
    return [*argv, "--resume"]


def edit_state(**changes) -> Callable[[Path], None]:
    def change(checkpoint: Path) -> None:
        state = json.loads((checkpoint / "state.json").read_text())
        (checkpoint / "state.json").write_text(json.dumps({**state, **changes}))

    return change


def drop_from_trainer(key: str) -> Callable[[Path], None]:
    def change(checkpoint: Path) -> None:
        extras = torch.load(checkpoint / "trainer.pt", weights_only=True)
        del extras[key]
        torch.save(extras, checkpoint / "trainer.pt")

    return change


def latest_pointing_outside(tmp: Path) -> list[str]:
    argv = interrupted(tmp, lambda checkpoint: None)
    (tmp / "run" / "student" / "checkpoints" / "latest").write_text("../../student/checkpoints/step-x")
    return argv


def text_student_with(tmp: Path, **word_ids) -> list[str]:
    """A saved fasttext student whose card's ``word_ids`` vocabulary has ``word_ids`` changed, and a text to predict."""
    from protege.data.text import WordIds
    from protege.models import build_model, save_model

    encoder = WordIds(max_length=4)
    encoder.fit(["good film", "bad food"])
    built = build_model("fasttext", {"max_length": 4, "dim": 4}, (4,), ["neg", "pos"], encoder.describe())
    directory = save_model(built.module, built.card, tmp / "fasttext")
    card = json.loads((directory / "model.json").read_text())
    card["preprocess"]["word_ids"].update(word_ids)
    (directory / "model.json").write_text(json.dumps(card))
    (tmp / "texts.txt").write_text("good food\n")
    return ["predict", str(directory), str(tmp / "texts.txt")]


CASES: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "text student card whose vocabulary size does not count its words": (
        lambda t: text_student_with(t, vocab_size=3),
        "preprocess.word_ids: vocab_size must be the number of distinct words plus 2",
    ),
    "text student card whose padded length is not its input size": (
        lambda t: text_student_with(t, max_length=8),
        "preprocess.word_ids.max_length is 8, the inputs hold 4 ids",
    ),
    "card with a negative input size": (
        lambda t: predict(tampered(t, input_shape=[-1, 8, 8])),
        "model.json: input_shape[0]: Input should be greater than or equal to 1 (got -1)",
    ),
    "card whose inputs hold ten billion values": (
        lambda t: export(tampered(t, input_shape=[1, 100_000, 100_000])),
        "model.json: input_shape [1, 100000, 100000] holds 10,000,000,000 values, at most 3,145,728",
    ),
    "card input shape that is text": (
        lambda t: evaluate(tampered(t, input_shape="1x8x8")),
        "model.json: input_shape: Input should be a valid list (got '1x8x8')",
    ),
    "card option of the wrong type": (
        lambda t: export(tampered(t, options={"hidden": "four"})),
        "model.json: model 'mlp': hidden: Input should be a valid integer",
    ),
    "card option the architecture lacks": (
        lambda t: evaluate(tampered(t, options={"hiden": 4})),
        "model.json: model 'mlp' has no option 'hiden' (did you mean \"hidden\"?)",
    ),
    "card asking for a huge teacher": (
        lambda t: as_teacher(t, tampered(t, options={"hidden": 60000, "layers": 200})),
        "more than the 268,435,456 a builtin model may have",
    ),
    "card of an unknown architecture": (
        lambda t: predict(tampered(t, architecture="transformer9000")),
        "architecture 'transformer9000' cannot be rebuilt by this protege",
    ),
    "card with one class": (
        lambda t: predict(tampered(t, class_names=["only"])),
        "model.json: class_names ['only']: a classifier has at least two classes",
    ),
    "card with numbers for class names": (
        lambda t: as_teacher(t, tampered(t, class_names=list(range(10)))),
        "model.json: class_names[0]: Input should be a valid string (got 0)",
    ),
    "card naming a class twice": (
        lambda t: predict(tampered(t, class_names=["a"] * 10)),
        "model.json: class_names holds a name twice",
    ),
    "card version that is text": (
        lambda t: predict(tampered(t, version="one")),
        "model.json: version must be a whole number (got 'one')",
    ),
    "card standardisation of the wrong length": (
        lambda t: predict(tampered(t, preprocess={"standardize": {"mean": [0.0] * 3, "std": [1.0] * 3}})),
        "model.json: preprocess.standardize.mean is not 64 finite numbers",
    ),
    "card that is a list": (lambda t: predict(tampered(t, format=["protege-model"])), "is not a protege model"),
    "exported file with a tampered card": (
        tampered_export,
        "exported.safetensors: model 'mlp': hidden: Input should be greater than or equal to 1 (got -4)",
    ),
    "checkpoint epoch that is text": (
        lambda t: interrupted(t, edit_state(epoch="one")),
        "state.json: epoch: Input should be a valid integer (got 'one')",
    ),
    "checkpoint with a negative step": (
        lambda t: interrupted(t, edit_state(global_step=-7)),
        "state.json: global_step: Input should be greater than or equal to 0 (got -7)",
    ),
    "checkpoint history shorter than its epochs": (
        lambda t: interrupted(t, edit_state(epoch=5)),
        "state.json: 1 epochs of history for epoch 5; delete it to start over",
    ),
    "checkpoint history that is not epochs": (
        lambda t: interrupted(t, edit_state(history=[{"epoch": "first", "train_loss": 0.5}])),
        "state.json: epoch: Input should be a valid integer (got 'first')",
    ),
    "checkpoint without its optimizer state": (
        lambda t: interrupted(t, drop_from_trainer("optimizer")),
        "trainer.pt lacks the optimizer, scheduler, random or running-sum state",
    ),
    "latest pointer that leaves the checkpoint folder": (
        latest_pointing_outside,
        "latest does not name a checkpoint of this folder",
    ),
}
