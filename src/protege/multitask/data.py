"""A multi-task recipe's data: every task's targets read from its label column(s) with its own task type's
reading (protege.data.targets), side by side in one float matrix (a class id as one column), and the
tasks' layout (protege.multitask.layout) learnt from the training split."""

from __future__ import annotations

import numpy as np

from protege.data.build import load_data
from protege.data.dataset import DataBundle
from protege.data.targets import target_index
from protege.errors import DataError, did_you_mean
from protege.multitask.config import MultitaskConfig
from protege.multitask.layout import TaskSpec, output_names

TABLE_SOURCES = ("csv", "jsonl")
"""Sources whose label columns a recipe names in ``label_columns``: filled from the tasks when left out."""


class TaskTargets:
    """Reads each task's columns of the raw targets; after the first call ``specs`` holds the tasks."""

    def __init__(self, config: MultitaskConfig):
        self.config = config
        self.specs: list[TaskSpec] = []

    def __call__(self, y: np.ndarray, class_names, source: str, column_names, delimiter):
        """The output names and an encoder of a split's raw targets into the tasks' target matrix."""
        columns = list(column_names or [])
        table = y.reshape(len(y), -1)
        if len(columns) != table.shape[1]:
            raise DataError(
                f"{source}: its {table.shape[1]} label column(s) have no names, and the tasks name "
                "columns; give label_names (npz) or label_columns (csv, jsonl)"
            )
        encoders, start = [], 0
        self.specs = []
        for task in self.config.tasks:
            for column in task.columns:
                if column not in columns:
                    raise DataError(
                        f"{source}: task {task.name!r} reads column {column!r}, which the data does not "
                        f"have{did_you_mean(column, columns)}; label columns: {', '.join(columns)}"
                    )
            picked = [columns.index(c) for c in task.columns]
            raw = table[:, picked[0]] if task.type == "classification" else table[:, picked]
            names, encode = target_index(task.type, raw, None, f"{source}, task {task.name!r}", task.columns, delimiter)
            spec = TaskSpec(task.name, task.type, tuple(names), start, task.weight)
            self.specs.append(spec)
            encoders.append((encode, picked, task.type))
            start += spec.target_width

        def encode_all(values: np.ndarray, split: str) -> np.ndarray:
            rows = values.reshape(len(values), -1)
            parts = []
            for encode, picked, kind in encoders:
                raw = rows[:, picked[0]] if kind == "classification" else rows[:, picked]
                parts.append(np.asarray(encode(raw, split), dtype=np.float32).reshape(len(rows), -1))
            return np.concatenate(parts, axis=1)

        return output_names(self.specs), encode_all


def task_specs(config: MultitaskConfig, class_names: list[str]) -> list[TaskSpec]:
    """The tasks as the data laid them out (output names ``task:name``, targets side by side)."""
    specs, start = [], 0
    for task in config.tasks:
        prefix = f"{task.name}:"
        names = tuple(n[len(prefix) :] for n in class_names if n.startswith(prefix))
        spec = TaskSpec(task.name, task.type, names, start, task.weight)
        specs.append(spec)
        start += spec.target_width
    return specs


def with_label_columns(source: str, options: dict, config: MultitaskConfig) -> dict:
    """A CSV or JSON Lines source reads the tasks' columns as its label columns unless the recipe names them."""
    if source.partition(":")[0] not in TABLE_SOURCES or "label_columns" in options:
        return options
    columns = list(dict.fromkeys(c for task in config.tasks for c in task.columns))
    return {**options, "label_columns": columns}


def load_multitask_data(recipe, text_encoder=None) -> DataBundle:
    """The recipe's data split as any run splits it, with the tasks' targets side by side (output names
    ``task:name``: protege.multitask.run.task_specs reads the tasks back from them)."""
    config, data = recipe.multitask, recipe.data
    return load_data(
        data.source,
        with_label_columns(data.source, data.options, config),
        val_fraction=data.val_fraction,
        test_fraction=data.test_fraction,
        standardize=data.standardize,
        seed=recipe.seed,
        text_encoder=text_encoder,
        task="multitask",
        targets=TaskTargets(config),
    )
