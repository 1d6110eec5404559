"""report.html: one self-contained page (styles inline, figures embedded as SVG data, no script, no
network) rendered from the report dict alone, so any report.json can be turned into a page."""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from pathlib import Path

from protege.models.store import atomic_write_text
from protege.report import plots, task_views
from protege.report.html_parts import figure as _figure
from protege.report.html_parts import section as _section
from protege.report.summary import report_reference

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d1d1f;
       margin: 0 auto; max-width: 1180px; padding: 24px 32px 48px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; }
.meta { color: #555; margin: 0 0 16px; }
table { border-collapse: collapse; margin: 8px 0; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e4e4e4; text-align: right; white-space: nowrap; }
th { background: #f3f5f8; font-weight: 600; white-space: normal; vertical-align: bottom; }
td:first-child, th:first-child, td.text { text-align: left; }
tr.flagged td { background: #fde8e6; }
.scroll { overflow-x: auto; }
figure { display: inline-block; margin: 8px 16px 8px 0; vertical-align: top; }
figure img { max-width: 100%; }
figcaption, .note { color: #555; font-size: 12.5px; max-width: 900px; }
"""


def render_html(report: dict) -> str:
    """The whole page for ``report`` (the dict written to report.json)."""
    models = report["models"]
    class_names = report["data"]["class_names"]
    titles = {name: entry.get("title", name) for name, entry in models.items()}
    parts = [_header(report), _summary_table(report)]
    task = report.get("task", "classification")
    batch_sizes = [str(b) for b in (report.get("evaluation") or {}).get("latency_batch_sizes") or []]
    headline = next(c for c in task_views.QUALITY[task] if c.key == task_views.HEADLINE[task])
    if batch_sizes:
        chart = plots.quality_vs_latency(models, batch_sizes[0], headline.key, headline.heading)
        if chart is not None:
            name = headline.heading.removeprefix("test ")
            caption = f"{headline.heading[0].upper()}{headline.heading[1:]} against CPU latency."
            parts.append(_section(f"{name[0].upper()}{name[1:]} versus latency", _figure(chart, caption)))
    metric = {"classification": "accuracy", "multilabel": "micro_f1", "regression": "mae", "multitask": "mean_score"}[
        task
    ]
    curves = plots.learning_curves(report.get("history") or {}, titles, metric)
    if curves is not None:
        note = f"Per epoch: training (solid) and validation (dashed) loss and {metric} of every stage trained here."
        parts.append(_section("Learning curves", _figure(curves, note)))
    parts += TASK_SECTIONS[task](models, class_names)
    fairness = report.get("fairness") or {}
    if fairness:
        parts.append(_fairness(report, fairness))
    if "continual" in report:
        from protege.report.continual import html_section

        parts.append(html_section(report["continual"]))
    if "robust" in (report.get("evaluation") or {}):
        from protege.report.robust import html_section as robust_section

        parts.append(robust_section(report))
    if "multitask" in report:
        from protege.multitask.report import html_section as multitask_section

        parts.append(multitask_section(report["multitask"]))
    if "unlearning" in report:
        from protege.report.unlearning import html_section as unlearning_section

        parts.append(unlearning_section(report["unlearning"]))
    if "adaptation" in report:
        from protege.report.adaptation import html_section as adaptation_section

        parts.append(adaptation_section(report["adaptation"]))
    if "quantization" in report:
        from protege.report.quantization import html_section as quantization_section

        parts.append(quantization_section(report["quantization"]))
    parts.append(_footer(report))
    title = f"protege report: {report['recipe']}"
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{escape(title)}</title>"
        f"<style>{STYLE}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n"
    )


def _classification_sections(models: dict, class_names: list[str]) -> list[str]:
    return [
        _section(
            "Calibration",
            _figure(
                plots.reliability_diagram(models),
                "Reliability diagram: accuracy of the test examples in each confidence bin; points below the "
                "diagonal are over-confident. ECE is the count-weighted mean gap.",
            ),
        ),
        _section(
            "Confusion matrices",
            _figure(plots.confusion_matrices(models, class_names), "Rows: true class; numbers: test examples."),
        ),
        _section("Accuracy per class", _figure(plots.per_class_bars(models, class_names), "")),
    ]


def _regression_sections(models: dict, target_names: list[str]) -> list[str]:
    first = next(iter(models.values()))["scatter"]["target"]
    caption = (
        f"Predicted against true {first} on (up to {task_views.SCATTER_POINTS}) test examples; on the diagonal a "
        "prediction is exact."
    )
    return [_section("Predictions", _figure(plots.prediction_scatter(models), caption))]


def _multilabel_sections(models: dict, label_names: list[str]) -> list[str]:
    bars = plots.per_class_bars(models, label_names, key="per_label_f1", ylabel="test F1")
    caption = "F1 of each label (a label is predicted when its probability passes 0.5)."
    return [_section("F1 per label", _figure(bars, caption))]


CURVE_METRIC = {"classification": "accuracy", "multilabel": "micro_f1", "regression": "mae", "multitask": "mean_score"}
"""The metric the learning curves plot beside the loss."""

TASK_SECTIONS: dict[str, Callable[[dict, list[str]], list[str]]] = {
    "classification": _classification_sections,
    "multilabel": _multilabel_sections,
    "regression": _regression_sections,
    "multitask": lambda models, class_names: [],  # its own section, below (protege.multitask.report)
}


def write_html(path: Path, report: dict) -> None:
    atomic_write_text(path, render_html(report))


def _header(report: dict) -> str:
    data = report["data"]
    sizes = data["sizes"]
    return (
        f"<h1>protege · {escape(str(report['recipe']))}</h1>"
        f"<p class='meta'>data {escape(data['source'])}: {data['num_classes']} {_outputs(report)}, inputs "
        f"{escape(str(tuple(data['input_shape'])))}, train {sizes['train']} / val {sizes['val']} / "
        f"test {sizes['test']} · seed {report.get('seed')} · protege {escape(report['protege_version'])}</p>"
    )


def _summary_table(report: dict) -> str:
    """Two tables under one ``#summary``: what each model kept, and what it costs."""
    models = report["models"]
    has_teacher = report_reference(report) is not None
    batch_sizes = [str(b) for b in (report.get("evaluation") or {}).get("latency_batch_sizes") or []]
    measured = [b for b in batch_sizes if any(b in e.get("latency_ms", {}) for e in models.values())]
    name_columns: list[tuple[str, Callable]] = [
        ("model", lambda e: e["title"]),
        ("architecture", lambda e: e["architecture"]),
    ]
    task = report.get("task", "classification")
    kept: list[tuple[str, Callable]] = [
        (c.heading, lambda e, c=c: c.format(e.get(c.key))) for c in task_views.QUALITY[task]
    ]
    if "robust" in (report.get("evaluation") or {}):
        kept.append(("robust accuracy", lambda e: _pct(e.get("robust_accuracy"))))
    if has_teacher:
        kept += [(c.heading, lambda e, c=c: c.format(e.get(c.key))) for c in task_views.AGAINST_TEACHER[task]]
    kept.append(("train time", lambda e: _seconds((e.get("training") or {}).get("train_seconds"))))
    cost: list[tuple[str, Callable]] = [
        ("parameters", lambda e: f"{e['parameters']:,}"),
        ("FLOPs / example", lambda e: _si(e["flops_per_example"])),
        ("file size", lambda e: _bytes(e.get("file_bytes"))),
    ]
    if has_teacher:
        cost.append(("compression", lambda e: _ratio(e.get("compression"))))
    for b in measured:
        cost.append((f"latency b{b}", lambda e, b=b: _ms(e.get("latency_ms", {}).get(b))))
        cost.append((f"throughput b{b}", lambda e, b=b: _rate(e.get("throughput_per_s", {}).get(b))))
        if has_teacher:
            cost.append((f"speed-up b{b}", lambda e, b=b: _ratio(e.get("speedup", {}).get(b))))
    evaluation = report.get("evaluation") or {}
    note = (
        f"On the test split. Latency: CPU, {evaluation.get('threads')} thread(s), forward pass in eval mode, "
        f"median of at least {evaluation.get('latency_min_repeats')} timed blocks of about "
        f"{evaluation.get('latency_block_ms')} ms ({evaluation.get('latency_budget_s')} s in all) after warm-up; "
        "throughput = batch ÷ latency. "
        "Compression and speed-up are teacher ÷ model."
        if measured
        else "On the test split. Latency was not measured."
    )
    body = (
        "<div id='summary'>"
        + _table("summary quality", name_columns + kept, models.values())
        + _table("summary cost", name_columns + cost, models.values())
        + f"</div><p class='note'>{escape(note)}</p>"
    )
    return _section("Summary", body)


def _outputs(report: dict) -> str:
    return {"multilabel": "labels", "regression": "targets"}.get(report.get("task", ""), "classes")


def _table(css_class: str, columns: list[tuple[str, Callable]], entries) -> str:
    head = "".join(f"<th>{escape(name)}</th>" for name, _ in columns)
    rows = []
    for entry in entries:
        cells = "".join(
            f"<td{' class=text' if i < 2 else ''}>{escape(str(get(entry)))}</td>" for i, (_, get) in enumerate(columns)
        )
        rows.append(f"<tr>{cells}</tr>")
    return (
        f"<div class='scroll'><table class='{css_class}'><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _fairness(report: dict, fairness: dict) -> str:
    blocks = []
    for name, section in fairness.items():
        title = report["models"][name]["title"]
        for kind, label in (("per_class", "class"), ("per_group", "group")):
            if kind not in section:
                continue
            gaps = section[kind]
            flagged = ", ".join(gaps["flagged"]) or "none"
            rows = "".join(
                f"<tr class='{'flagged' if r['flagged'] else ''}'><td class=text>{escape(r['name'])}</td>"
                f"<td>{r['count']}</td><td>{_pct(r['teacher_accuracy'])}</td><td>{_pct(r['student_accuracy'])}</td>"
                f"<td>{_points(r['drop'])}</td><td class=text>{'⚠ flagged' if r['flagged'] else ''}</td></tr>"
                for r in gaps["rows"]
            )
            blocks.append(
                f"<h3>{escape(title)}, per {label}</h3><p class='note'>Average drop {_points(gaps['average_drop'])}; "
                f"flagged when a {label} drops more than {gaps['margin'] * 100:.1f} points beyond it: "
                f"<b>{escape(flagged)}</b>.</p><div class='scroll'><table class='fairness'><thead><tr>"
                f"<th>{label}</th><th>test examples</th><th>teacher</th><th>{escape(title)}</th><th>drop</th>"
                f"<th></th></tr></thead><tbody>{rows}</tbody></table></div>"
            )
    intro = (
        "<p class='note'>Accuracy of the teacher and each student side by side. A student that loses much more "
        "on some classes or groups than on average carries or amplifies a bias; small slices are noisy, so "
        "read a flag with its count.</p>"
    )
    return _section("Fairness check: teacher versus student", intro + "".join(blocks))


def _footer(report: dict) -> str:
    machine = report.get("machine") or {}
    text = (
        f"Measured on {machine.get('platform')} ({machine.get('processor')}, {machine.get('cpu_count')} CPUs), "
        f"torch {machine.get('torch')}. Whole run: {_seconds(report.get('wall_seconds'))}. "
        "Every number on this page is in report.json next to it."
    )
    return f"<p class='note'>{escape(text)}</p>"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _points(value: float) -> str:
    return f"{value * 100:+.1f} pts"


def _num(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}×"


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f} ms"


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}/s"


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} s"


def _bytes(value: int | None) -> str:
    if value is None:
        return "–"
    for unit, scale in (("MB", 1e6), ("kB", 1e3)):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value} B"


def _si(value: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.2f}{unit}"
    return f"{value:.0f}"
