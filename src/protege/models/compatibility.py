"""Whether a saved model fits the data it meets: the same classes (reordered to the data's order when
only the order differs), the same feature columns in the same order, the same preprocessing, and a test
split that holds none of its training examples. A mismatch is one line that says what to change."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from protege.console import log
from protege.errors import ModelError
from protege.models.store import ModelCard


def align_classes(module: nn.Module, card: ModelCard, class_names: list[str], who: str) -> None:
    """Make the model's outputs follow ``class_names``: the same classes in another order have the rows of
    its output layer permuted (and the card updated); other classes are refused."""
    if list(card.class_names) == list(class_names):
        return
    if len(card.class_names) != len(class_names):
        raise ModelError(
            f"{who} predicts {len(card.class_names)} classes but the data has {len(class_names)}; "
            f"use a model trained on the same classes"
        )
    if sorted(card.class_names) != sorted(class_names):
        unknown = next(name for name in card.class_names if name not in class_names)
        raise ModelError(
            f"{who} predicts class {unknown!r}, which the data does not have (model: {_shown(card.class_names)}; "
            f"data: {_shown(class_names)}); use a model trained on the same classes"
        )
    head = getattr(module, "head", None)
    if not isinstance(head, nn.Linear) or head.out_features != len(class_names):
        raise ModelError(
            f"{who} orders its classes {_shown(card.class_names)}, the data {_shown(class_names)}, and its output "
            "layer cannot be reordered; give the data its classes in the model's order"
        )
    order = torch.tensor([card.class_names.index(name) for name in class_names])
    with torch.no_grad():
        head.weight.copy_(head.weight[order])
        if head.bias is not None:
            head.bias.copy_(head.bias[order])
    log(f"{who}: its classes are the data's in another order; its outputs now follow the data's order")
    card.class_names = list(class_names)


def check_inputs(card: ModelCard, preprocess: dict, split: dict, who: str) -> None:
    """Refuse data whose task, features, preprocessing or test split differ from what the model was trained on."""
    check_task(card, split.get("task", "classification"), who)
    check_features(card.preprocess.get("features"), preprocess.get("features"), who)
    _check_standardize(card.preprocess.get("standardize"), preprocess.get("standardize"), who)
    if "tfidf" in card.preprocess and card.preprocess["tfidf"] != preprocess.get("tfidf"):
        raise ModelError(
            f"{who} reads TF-IDF features of its own training texts, and this data's vocabulary differs; "
            "use a model that reads the texts itself (an hf: model) or retrain it on this data"
        )
    if "word_ids" in card.preprocess and card.preprocess["word_ids"] != preprocess.get("word_ids"):
        raise ModelError(f"{who} reads word ids of its own vocabulary, and this data is encoded another way")
    check_split(card.data, split, who)


def check_task(card: ModelCard, task: str, who: str) -> None:
    """Refuse a model whose outputs mean something else than the data's targets (classes, labels, values)."""
    trained = card.data.get("task", "classification")
    if trained != task:
        raise ModelError(
            f"{who} was trained for a {trained} task, and this data is a {task} task: its outputs mean something "
            f"else; use a model trained for {task} (or set data.task: {trained})"
        )


def check_saved_task(source: str, task: str, who: str) -> None:
    """For a ``run:`` source, :func:`check_task` on its card before anything is built (a classifier's ten
    outputs never meet a regression task's one target)."""
    if source.startswith("run:"):
        from protege.models.store import read_card, resolve_run_path

        check_task(read_card(resolve_run_path(source)), task, who)


def check_features(trained: list[str] | None, given: list[str] | None, who: str) -> None:
    """Refuse feature columns other than the model's, or the same ones in another order."""
    if trained is None or given is None or list(trained) == list(given):
        return
    missing = [name for name in trained if name not in given]
    if missing:
        raise ModelError(f"{who} reads column {missing[0]!r}, which the data lacks (data columns: {_shown(given)})")
    raise ModelError(
        f"{who} reads the columns in another order ({_shown(trained)}); the data gives {_shown(given)}: "
        f"set data.options.feature_columns: [{', '.join(trained)}]"
    )


def _check_standardize(trained: dict | None, given: dict | None, who: str) -> None:
    if trained is None and given is None:
        return
    if trained is None:
        raise ModelError(f"{who} was trained on inputs that were not standardised; set data.standardize: false")
    if given is None:
        raise ModelError(f"{who} was trained on standardised inputs; set data.standardize: true")
    same = all(
        np.allclose(np.asarray(trained[k], dtype=np.float64), np.asarray(given[k], dtype=np.float64), rtol=1e-4)
        for k in ("mean", "std")
    )
    if not same:
        raise ModelError(
            f"{who} was trained on inputs standardised with the statistics of another training split; "
            "train it on this recipe's data and seed, or score it with protege evaluate --data"
        )


def check_split(trained: dict, split: dict, who: str) -> None:
    """Refuse a test split drawn from the model's own data with another seed or fraction: it would hold
    examples the model trained on, and its test scores would be too good."""
    if not trained or not split or trained.get("test") != "drawn" or split.get("test") != "drawn":
        return
    where = lambda s: (s.get("location") or s.get("source"), s.get("options"))  # noqa: E731
    if where(trained) != where(split):
        return
    wanted = (trained.get("seed"), trained.get("test_fraction"))
    if wanted != (split.get("seed"), split.get("test_fraction")):
        raise ModelError(
            f"{who} was trained on {trained['source']} with the test split drawn by seed {wanted[0]} "
            f"(test_fraction {wanted[1]}); a test split drawn by seed {split.get('seed')} "
            f"(test_fraction {split.get('test_fraction')}) holds its training examples: use seed {wanted[0]} "
            f"and test_fraction {wanted[1]}"
        )


def _shown(names: list[str], limit: int = 6) -> str:
    head = ", ".join(str(n) for n in names[:limit])
    return head + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def check_task_free(card: ModelCard, who: str) -> None:
    """Refuse a task-incremental continual model where no task ids exist: it answers within the classes of
    a known experience (its head per task), and plain data says nothing about the experience."""
    continual = card.metrics.get("continual") or {}
    if continual.get("scenario") == "task_incremental":
        raise ModelError(
            f"{who} was trained task-incremental: it needs the task (experience) of each example at test time, "
            "and this data has no task ids; its run's report.json has its accuracy per task, or train it "
            "class-incremental to use it on plain data"
        )
