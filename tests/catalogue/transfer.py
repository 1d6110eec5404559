"""Transfer-set problems, found by ``--dry-run`` and by a run before its teacher trains."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from tests.catalogue import recipe
from tests.catalogue.hf import TINY_BERT, text_recipe

TEACHER = {"model": {"source": "mlp", "hidden": 16}, "train": {"epochs": 1, "batch_size": 256}}


def distilling_with(tmp: Path, transfer: dict, dry_run: bool = True) -> list[str]:
    argv = recipe(tmp, {"teacher": TEACHER, "student.objective": {"name": "kd"}, "transfer": transfer})
    return [*argv[:2], "--dry-run"] if dry_run else argv


def text_csv(tmp: Path) -> str:
    (tmp / "texts.csv").write_text("text,label\nsome words,a\nmore words,b\n")
    return f"csv:{tmp / 'texts.csv'}"


def flat_npz(tmp: Path) -> str:
    np.savez(tmp / "flat.npz", x=np.arange(10.0), y=np.arange(10) % 2)
    return f"npz:{tmp / 'flat.npz'}"


def text_lines(tmp: Path, text: str) -> str:
    (tmp / "more.txt").write_text(text, encoding="utf-8")
    return f"texts:{tmp / 'more.txt'}"


def distilling_text(tmp: Path, transfer: dict) -> list[str]:
    """The sentiment texts, a tiny hf teacher and a fasttext student of its own vocabulary, with ``transfer``."""
    return text_recipe(tmp, teacher=TINY_BERT(tmp), student={"source": "fasttext", "dim": 8}, transfer=transfer)


CASES: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "transfer file that does not exist, in a dry run": (
        lambda t: distilling_with(t, {"source": f"csv:{t / 'nope.csv'}"}),
        "data file not found",
    ),
    "transfer file that does not exist": (
        lambda t: distilling_with(t, {"source": f"csv:{t / 'nope.csv'}"}, dry_run=False),
        "data file not found",
    ),
    "transfer inputs of another shape": (
        lambda t: distilling_with(t, {"source": "mnist1d", "options": {"num_samples": 100}}),
        "transfer set inputs have shape (1, 40), the data's are (1, 8, 8)",
    ),
    "transfer option out of range": (
        lambda t: distilling_with(t, {"source": "mnist1d", "options": {"num_samples": -5}}),
        "data source 'mnist1d': num_samples: Input should be greater than or equal to 10 (got -5)",
    ),
    "transfer texts for numeric data": (
        lambda t: distilling_with(t, {"source": text_csv(t), "options": {"text_column": "text"}}),
        "holds texts but the labelled data does not",
    ),
    "transfer arrays of rank 1": (lambda t: distilling_with(t, {"source": flat_npz(t)}), "x has shape (10,)"),
    "mixup alpha of zero, in a dry run": (
        lambda t: distilling_with(t, {"source": "mixup", "options": {"alpha": 0}}),
        "transfer set 'mixup': alpha: Input should be greater than 0 (got 0)",
    ),
    "a text augmentation of numeric data": (
        lambda t: distilling_with(t, {"source": "word_mask"}),
        "transfer set 'word_mask' makes new texts of the training texts' words, and digits gives numeric inputs; "
        "use mixup for numbers, or a text source",
    ),
    "a file of texts for numeric data": (
        lambda t: distilling_with(t, {"source": text_lines(t, "some words\n")}),
        "holds texts but the labelled data does not; use numeric inputs",
    ),
    "a file of texts that does not exist": (
        lambda t: distilling_text(t, {"source": f"texts:{t / 'nope.txt'}", "options": {}}),
        "data file not found",
    ),
    "a file of texts whose every line is blank": (
        lambda t: distilling_text(t, {"source": text_lines(t, "\n  \n"), "options": {}}),
        "no texts (every line is blank); write one text per line",
    ),
    "a file of texts given a column": (
        lambda t: distilling_text(t, {"source": text_lines(t, "a text\n")}),
        "has no option 'text_column'; valid: none",
    ),
    "a masking probability of one": (
        lambda t: distilling_text(t, {"source": "word_mask", "options": {"probability": 1}}),
        "transfer set 'word_mask': probability: Input should be less than 1 (got 1)",
    ),
    "a misspelt span fraction": (
        lambda t: distilling_text(t, {"source": "span_mix", "options": {"fractoin": 0.2}}),
        "transfer set 'span_mix' has no option 'fractoin' (did you mean \"fraction\"?)",
    ),
}
