"""The robust part of a report (docs/report.md, ``evaluation.robust`` and each entry's ``robust_accuracy``):
the printed table and report.html's section, with clean and robust accuracy of every model side by side,
the method each trained with and what it cost. Rendered from the report dict alone."""

from __future__ import annotations

from html import escape

from rich.table import Table

from protege.report.html_parts import figure, section
from protege.report.plots import COLORS, _figure, to_svg

HEADINGS = ("model", "trained with", "clean acc", "robust acc", "robust ÷ clean", "robust ÷ teacher", "train time")


def attack_text(robust: dict) -> str:
    """The evaluation attack in words: PGD-20, 2 restarts, L∞ ε = 0.1 (raw units)."""
    ball = "L∞" if robust["norm"] == "linf" else "L2"
    restarts = f"{robust['restarts']} restart{'s' if robust['restarts'] > 1 else ''}"
    start = "random starts" if robust["random_start"] else "no random start"
    low, high = robust["input_range"]
    return (
        f"PGD-{robust['steps']}, {restarts} ({start}), {ball} ε = {robust['epsilon']:g}, "
        f"step {robust['step_size']:.3g}, inputs in [{low:g}, {high:g}] (raw units)"
    )


def method_text(entry: dict) -> str:
    """How the model trained: its robust method and options, or – for a model loaded, not trained here."""
    record = (entry.get("training") or {}).get("robust")
    if not record:
        return "–"
    options = {k: v for k, v in record.items() if k not in ("method", "attack")}
    shown = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in options.items())
    return f"{record['method']} ({shown})" if shown else record["method"]


def rows(report: dict) -> list[list[str]]:
    out = []
    for entry in report["models"].values():
        clean, robust = entry.get("accuracy"), entry.get("robust_accuracy")
        seconds = (entry.get("training") or {}).get("train_seconds")
        out.append(
            [
                entry.get("title", ""),
                method_text(entry),
                _pct(clean),
                _pct(robust),
                f"{robust / clean:.2f}" if clean and robust is not None else "–",
                f"{entry['robust_accuracy_retained']:.2f}" if entry.get("robust_accuracy_retained") else "–",
                f"{seconds:.1f}s" if seconds is not None else "–",
            ]
        )
    return out


def robust_table(report: dict) -> Table:
    table = Table(title=f"robustness · {attack_text(report['evaluation']['robust'])}")
    for heading in HEADINGS:
        table.add_column(heading, justify="left" if heading in ("model", "trained with") else "right", no_wrap=True)
    for row in rows(report):
        table.add_row(*row)
    return table


def html_section(report: dict) -> str:
    """The table, what the attack was, and clean against robust accuracy per model."""
    robust = report["evaluation"]["robust"]
    head = "".join(f"<th>{escape(h)}</th>" for h in HEADINGS)
    body = "".join(
        "<tr>" + "".join(f"<td{' class=text' if i < 2 else ''}>{escape(c)}</td>" for i, c in enumerate(row)) + "</tr>"
        for row in rows(report)
    )
    note = (
        f"<p class='note'>Robust accuracy: the share of the {robust['examples']} test examples classified correctly "
        f"{escape(robust['robust_if'])}, under {escape(attack_text(robust))}, each model attacked in eval mode "
        "on its own gradients. The budget and the range are in the raw input units, before any "
        "standardisation.</p>"
    )
    table = (
        f"<div class='scroll'><table class='robust'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )
    chart = figure(clean_and_robust(report["models"]), "Clean (left bar) and robust (right bar) test accuracy.")
    return section("Robustness", note + table + chart)


def clean_and_robust(models: dict[str, dict]) -> str:
    """Two bars per model: accuracy on the natural test inputs and under the attack."""
    figure_, (ax,) = _figure(max(4.0, 1.1 * len(models) + 1.5), 3.2)
    names = [entry.get("title", key) for key, entry in models.items()]
    positions = range(len(models))
    for offset, key, label, color in (
        (-0.2, "accuracy", "clean", COLORS[0]),
        (0.2, "robust_accuracy", "robust", COLORS[1]),
    ):
        values = [entry.get(key) or 0.0 for entry in models.values()]
        ax.bar([p + offset for p in positions], values, width=0.38, color=color, label=label)
    ax.set_xticks(list(positions), names, fontsize=8)
    ax.set(ylim=(0, 1.15), ylabel="test accuracy")
    ax.legend(fontsize=8, frameon=False, ncols=2, loc="upper center")
    return to_svg(figure_)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"
