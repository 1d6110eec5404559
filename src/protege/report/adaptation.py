"""The adaptation block of a report (docs/report.md, ``adaptation``): the printed table of every method's
target and source test accuracy, and report.html's section with the table and a bar chart of target
accuracy. Rendered from the report dict alone."""

from __future__ import annotations

from html import escape

from rich.table import Table

from protege.report.html_parts import figure, section
from protege.report.plots import COLORS, _figure, to_svg

COLUMNS = (
    (("target", "accuracy"), "target acc", "{:.3f}"),
    (("target", "macro_f1"), "target macro-F1", "{:.3f}"),
    (("source", "accuracy"), "source acc", "{:.3f}"),
    (("target_accuracy_gain",), "gain over source-only", "{:+.3f}"),
    (("a_distance",), "A-distance", "{:.2f}"),
    (("seconds",), "seconds", "{:.2f}"),
)


def _cell(entry: dict, keys: tuple[str, ...], pattern: str) -> str:
    value: object = entry
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return "–" if value is None else pattern.format(value)


def adaptation_table(block: dict) -> Table:
    """Per method: target and source test accuracy, the gain over source-only, the proxy A-distance, time."""
    table = Table(title=f"domain adaptation · target: {block['target']} · select: {block['select']}")
    table.add_column("method", justify="left", no_wrap=True)
    for _, heading, _ in COLUMNS:
        table.add_column(heading, justify="right", no_wrap=True)
    for name, entry in block["methods"].items():
        table.add_row(name, *(_cell(entry, keys, pattern) for keys, _, pattern in COLUMNS))
    return table


def html_section(block: dict) -> str:
    """The table and the target accuracy chart, as one report.html section."""
    head = "".join(f"<th>{escape(heading)}</th>" for _, heading, _ in COLUMNS)
    rows = "".join(
        f"<tr><td>{escape(name)}</td>" + "".join(f"<td>{_cell(entry, k, p)}</td>" for k, _, p in COLUMNS) + "</tr>"
        for name, entry in block["methods"].items()
    )
    sizes = block["sizes"]
    note = (
        f"<p class='note'>Target: {escape(block['target'])}; {sizes['source_train']} labelled source and "
        f"{sizes['target_train']} unlabelled target training examples, {sizes['target_test']} target test examples. "
        f"Selection: {escape(block['selection'])}. Features: {escape(block['features'])}. A-distance: "
        f"{escape(block['a_distance'])}.</p>"
    )
    table = f"<div class='scroll'><table><tr><th>method</th>{head}</tr>{rows}</table></div>"
    chart = figure(accuracy_chart(block["methods"]), "Test accuracy on the target and on the source, per method.")
    return section("Domain adaptation", note + table + chart)


def accuracy_chart(methods: dict[str, dict]) -> str:
    """Grouped bars: target and source test accuracy of each method."""
    names = list(methods)
    figure_, axes = _figure(1.2 * len(names) + 2.0, 2.8)
    ax = axes[0]
    width = 0.38
    for offset, (split, color) in enumerate(zip(("target", "source"), COLORS, strict=False)):
        values = [methods[n][split]["accuracy"] for n in names]
        ax.bar([i + (offset - 0.5) * width for i in range(len(names))], values, width, color=color, label=split)
    ax.set_xticks(range(len(names)), names)
    ax.set(ylabel="test accuracy", ylim=(0, 1))
    ax.legend(fontsize=8, frameon=False)
    return to_svg(figure_)
