"""What ``protege predict`` says of a multi-head model's input: per task its most probable class (and the
probability), its labels (probability at least 0.5) or its values, read from the card's tasks."""

from __future__ import annotations

import numpy as np

from protege.multitask.layout import TaskSpec, output_slices


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def task_predictions(card_tasks: list[dict], outputs: np.ndarray) -> list[dict[str, object]]:
    """Per input, per task: ``{"class", "probability"}``, a list of labels, or ``{target: value}``."""
    tasks = [TaskSpec.from_card(entry) for entry in card_tasks]
    slices = output_slices(tasks)
    rows: list[dict[str, object]] = [{} for _ in range(len(outputs))]
    for task in tasks:
        part = outputs[:, slices[task.name]]
        for row, values in zip(rows, part, strict=True):
            if task.type == "classification":
                p = _softmax(values)
                best = int(np.argmax(p))
                row[task.name] = {"class": task.names[best], "probability": float(p[best])}
            elif task.type == "multilabel":
                row[task.name] = [name for name, v in zip(task.names, values, strict=True) if v >= 0]
            else:
                row[task.name] = dict(zip(task.names, map(float, values), strict=True))
    return rows


def shown(value: object) -> str:
    """One task's prediction in a table cell."""
    if isinstance(value, dict) and "class" in value:
        return f"{value['class']}  {value['probability']:.1%}"
    if isinstance(value, dict):
        return ", ".join(f"{v:.6g}" for v in value.values())
    return ", ".join(value) or "–"  # type: ignore[arg-type]


def task_table(table, predictions) -> object:
    """``table`` (its input column added) with one column per task and a row per prediction."""
    from rich.text import Text

    for task in predictions[0].tasks:
        table.add_column(Text(task), justify="left")
    for prediction in predictions:
        table.add_row(Text(prediction.input), *(Text(shown(v)) for v in prediction.tasks.values()))
    return table
