"""The continual block of a report (docs/report.md, ``continual``): the printed table, and report.html's
section with each strategy's accuracy matrix as a heat map and the accuracy of every experience as
training goes through the stream. Rendered from the report dict alone."""

from __future__ import annotations

from html import escape

from rich.table import Table

from protege.report.html_parts import figure, section
from protege.report.plots import COLORS, _figure, to_svg

MEASURES = (
    ("average_accuracy", "average accuracy"),
    ("forgetting", "forgetting"),
    ("backward_transfer", "backward transfer"),
    ("forward_transfer", "forward transfer"),
)


def continual_table(block: dict) -> Table:
    """Per strategy: final average accuracy, forgetting, transfer, time and the memory it kept."""
    table = Table(title=f"continual · {block['scenario'].replace('_', '-')} · {len(block['experiences'])} experiences")
    for heading in ("strategy", *(h for _, h in MEASURES), "train time", "kept"):
        table.add_column(heading, justify="left" if heading == "strategy" else "right", no_wrap=True)
    for name, entry in block["strategies"].items():
        table.add_row(
            name,
            *(_number(entry.get(key)) for key, _ in MEASURES),
            f"{train_seconds(entry):.1f}s",
            _megabytes(max(cost["state_bytes"] for cost in entry["per_experience"])),
        )
    return table


def train_seconds(entry: dict) -> float:
    return sum(cost.get("train_seconds") or 0.0 for cost in entry["per_experience"])


def html_section(block: dict) -> str:
    """The measures table, the matrices and the curves, as one report.html section."""
    strategies = block["strategies"]
    rows = "".join(
        f"<tr><td>{escape(name)}</td>"
        + "".join(f"<td>{_number(entry.get(key))}</td>" for key, _ in MEASURES)
        + f"<td>{train_seconds(entry):.1f} s</td>"
        + f"<td>{_megabytes(max(c['state_bytes'] for c in entry['per_experience']))}</td></tr>"
        for name, entry in strategies.items()
    )
    headings = "".join(f"<th>{h}</th>" for _, h in MEASURES)
    table = (
        f"<div class='scroll'><table><tr><th>strategy</th>{headings}<th>train time</th><th>kept</th></tr>"
        f"{rows}</table></div>"
    )
    experiences = ", ".join(
        f"{escape(e['name'])}: {escape(' '.join(e['classes']))}" if len(e["classes"]) <= 6 else escape(e["name"])
        for e in block["experiences"]
    )
    note = (
        f"<p class='note'>{escape(block['scenario'].replace('_', '-'))} stream; {experiences}. Average accuracy: "
        "over every experience's test split after the last one; forgetting: each experience's best accuracy "
        "minus its final one; kept: the memory a strategy holds between experiences (buffers, importances).</p>"
    )
    figures = [
        figure(
            accuracy_matrices(strategies),
            "Accuracy on each experience's test split (columns) after training on each experience (rows).",
        ),
        figure(experience_curves(strategies), "Accuracy on each experience as the stream goes on."),
    ]
    return section("Continual learning", note + table + "".join(figures))


def accuracy_matrices(strategies: dict[str, dict]) -> str:
    """One heat map per strategy: row i, column j is the accuracy on experience j after experience i."""
    count = len(strategies)
    size = min(3.2, max(2.2, 0.45 * len(next(iter(strategies.values()))["accuracy_matrix"])))
    figure, axes = _figure(size * count + 0.8, size + 0.4, columns=count)
    image = None
    for ax, (name, entry) in zip(axes, strategies.items(), strict=True):
        ax.grid(False)
        matrix = entry["accuracy_matrix"]
        image = ax.imshow(matrix, cmap="viridis", vmin=0, vmax=1)
        ax.set(title=name, xlabel="tested on", ylabel="after")
        ticks = range(len(matrix))
        ax.set_xticks(list(ticks), [str(t + 1) for t in ticks], fontsize=7)
        ax.set_yticks(list(ticks), [str(t + 1) for t in ticks], fontsize=7)
        if len(matrix) <= 10:
            for r, row in enumerate(matrix):
                for c, value in enumerate(row):
                    ax.text(c, r, f"{value:.2f}", ha="center", va="center", fontsize=6,
                            color="k" if value > 0.6 else "white")  # fmt: skip
    figure.colorbar(image, ax=axes, shrink=0.8, label="test accuracy")
    return to_svg(figure)


def experience_curves(strategies: dict[str, dict]) -> str:
    """Per strategy, the accuracy of every experience (one line each) after each experience trained."""
    count = len(strategies)
    figure, axes = _figure(2.8 * count + 0.8, 2.8, columns=count)
    for ax, (name, entry) in zip(axes, strategies.items(), strict=True):
        matrix = entry["accuracy_matrix"]
        steps = range(1, len(matrix) + 1)
        for j in range(len(matrix)):
            points = [(i, matrix[i - 1][j]) for i in steps if i > j]  # from when experience j arrived
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, "-o", markersize=3, color=COLORS[j % len(COLORS)], linewidth=1.4, label=f"exp {j + 1}")
        ax.set(title=name, xlabel="after experience", ylim=(0, 1.02))
        ax.set_xticks(list(steps))
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, fontsize=8, frameon=False, loc="outside right upper")
    return to_svg(figure)


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _megabytes(count: int) -> str:
    return f"{count / 1024**2:.2f} MB"
