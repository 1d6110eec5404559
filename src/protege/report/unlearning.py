"""The unlearning block of a report (docs/report.md, ``unlearning``): the printed table beside the
retrained reference, and report.html's section with the table and the loss distributions of forgotten,
retained and test examples for every model. Rendered from the report dict alone."""

from __future__ import annotations

import itertools
from html import escape

from rich.table import Table

from protege.report.html_parts import figure, section
from protege.report.plots import COLORS, _figure, to_svg

COLUMNS = (
    ("forget_accuracy", "forget acc", "{:.3f}"),
    ("retain_accuracy", "retain acc", "{:.3f}"),
    ("test_accuracy", "test acc", "{:.3f}"),
    ("mia_auc", "MIA AUC", "{:.3f}"),
    ("agreement_test", "agreement (test)", "{:.3f}"),
    ("seconds", "seconds", "{:.2f}"),
    ("share_of_retraining", "× retraining time", "{:.2f}"),
)


def _cell(entry: dict, key: str, pattern: str) -> str:
    value = entry.get(key)
    return "–" if value is None else pattern.format(value)


def unlearning_table(block: dict) -> Table:
    """Per model: the three accuracies, the membership-inference AUC, agreement with the retrained model, time."""
    reference = "retrained without them" if "retrained" in block["models"] else "none (protege forget --retrain)"
    table = Table(title=f"unlearning · forgot {block['forgot']} · reference: {reference}")
    table.add_column("model", justify="left", no_wrap=True)
    for _, heading, _ in COLUMNS:
        table.add_column(heading, justify="right", no_wrap=True)
    for name, entry in block["models"].items():
        table.add_row(name, *(_cell(entry, key, pattern) for key, _, pattern in COLUMNS))
    return table


def html_section(block: dict) -> str:
    """The table, SISA's costs and the loss distributions, as one report.html section."""
    head = "".join(f"<th>{escape(heading)}</th>" for _, heading, _ in COLUMNS)
    rows = "".join(
        f"<tr><td>{escape(name)}</td>" + "".join(f"<td>{_cell(entry, k, p)}</td>" for k, _, p in COLUMNS) + "</tr>"
        for name, entry in block["models"].items()
    )
    note = (
        f"<p class='note'>Forgotten: {escape(block['forgot'])}; {block['forget_size']} forgotten, "
        f"{block['retain_size']} retained. The reference is the same model retrained from scratch without the "
        "forgotten examples: a method forgot well when its three accuracies and its membership-inference AUC "
        "(a loss threshold telling forgotten from test examples; 0.5 is chance) match the reference's.</p>"
    )
    sisa = block.get("sisa")
    if sisa:
        speedup = sisa["speedup_over_retraining"]
        note += (
            f"<p class='note'>SISA: {sisa['shards']} shards × {sisa['slices']} slices ({sisa['aggregate']}); the "
            f"deletion retrained {sisa['shards_retrained']} shards ({sisa['slices_retrained']} slices) in "
            f"{sisa['deletion_seconds']:.2f} s against {sisa['retraining_seconds'] or 0:.2f} s for "
            f"{'full retraining' if sisa.get('retraining_measured', True) else 'the original training'}"
            f"{f' ({speedup:.2f}× faster)' if speedup else ''}.</p>"
        )
    table = f"<div class='scroll'><table><tr><th>model</th>{head}</tr>{rows}</table></div>"
    chart = figure(loss_distributions(block["models"]), "Per-example loss of forgotten, retained and test examples.")
    return section("Unlearning", note + table + chart)


def loss_distributions(models: dict[str, dict]) -> str:
    """One panel per model: histograms of the loss of forgotten, retained and test examples (shares)."""
    count = len(models)
    figure_, axes = _figure(2.6 * count + 0.8, 2.6, columns=count)
    for ax, (name, entry) in zip(axes, models.items(), strict=True):
        hist = entry["loss_histogram"]
        edges = hist["edges"]
        centres = [(a + b) / 2 for a, b in itertools.pairwise(edges)]
        for color, part in zip(COLORS, ("forget", "retain", "test"), strict=False):
            total = max(sum(hist[part]), 1)
            ax.plot(centres, [c / total for c in hist[part]], color=color, linewidth=1.4, label=part)
        ax.set(title=name, xlabel="loss", yscale="symlog")
    handles, labels = axes[0].get_legend_handles_labels()
    figure_.legend(handles, labels, fontsize=8, frameon=False, loc="outside right upper")
    return to_svg(figure_)
