"""The multitask block of a report (docs/report.md, ``multitask``): per model, each task's test score and
the tasks' average, in the printed table and as a report.html section, with each task's teacher beside
the student. Rendered from the report dict alone."""

from __future__ import annotations

from html import escape

from rich.table import Table

from protege.report.html_parts import section

SHOWN = {
    "accuracy": "{:.1%}",
    "micro_f1": "{:.3f}",
    "macro_f1": "{:.3f}",
    "mae": "{:.4g}",
    "rmse": "{:.4g}",
    "r2": "{:.3f}",
}
"""The metrics the table shows per task, and how."""


def _columns(block: dict) -> list[tuple[str, str]]:
    """(task, metric) pairs: every shown metric of every task, in the tasks' order."""
    first = next(iter(block["models"].values()))
    columns = []
    for task in block["tasks"]:
        values = next(
            (m["tasks"][task["name"]] for m in block["models"].values() if task["name"] in m["tasks"]),
            first["tasks"].get(task["name"], {}),
        )
        columns += [(task["name"], metric) for metric in SHOWN if metric in values]
    return columns


def _cell(entry: dict, task: str, metric: str) -> str:
    value = entry["tasks"].get(task, {}).get(metric)
    return "–" if value is None else SHOWN[metric].format(value)


def multitask_table(block: dict) -> Table:
    """Per model: each task's metrics on the test split and the tasks' average score."""
    table = Table(title=f"multi-task · combine {block['combine']} · average of {', '.join(block['score'].values())}")
    table.add_column("model", justify="left", no_wrap=True)
    columns = _columns(block)
    for task, metric in columns:
        table.add_column(f"{task} {metric}", justify="right", no_wrap=True)
    table.add_column("mean score", justify="right", no_wrap=True)
    for name, entry in block["models"].items():
        table.add_row(name, *(_cell(entry, t, m) for t, m in columns), f"{entry['mean_score']:.3f}")
    return table


def html_section(block: dict) -> str:
    """The same table, with a note on the score each task contributes to the average, as one section."""
    columns = _columns(block)
    head = "".join(f"<th>{escape(task)} {escape(metric)}</th>" for task, metric in columns)
    rows = "".join(
        f"<tr><td>{escape(name)}</td>"
        + "".join(f"<td>{_cell(entry, t, m)}</td>" for t, m in columns)
        + f"<td>{entry['mean_score']:.3f}</td></tr>"
        for name, entry in block["models"].items()
    )
    scores = ", ".join(f"{escape(task)}: {escape(score)}" for task, score in block["score"].items())
    note = (
        f"<p class='note'>One model with a head per task, losses combined by {escape(block['combine'])}. "
        f"The mean score averages one score per task ({scores}); a teacher row is a single-task model.</p>"
    )
    table = f"<div class='scroll'><table><tr><th>model</th>{head}<th>mean score</th></tr>{rows}</table></div>"
    return section("Multi-task", note + table)
