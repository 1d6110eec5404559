"""The report's figures, drawn with matplotlib (no pyplot state, no display) and returned as SVG text."""

from __future__ import annotations

import io

import matplotlib
from matplotlib.figure import Figure

COLORS = ["#1f4e79", "#c0504d", "#2e8b57", "#8064a2", "#d98c1f", "#4bacc6", "#7f7f7f"]


def to_svg(figure: Figure) -> str:
    """The figure as SVG text; fonts stay text (small files, readable), the browser picks the face."""
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "protege"}):
        figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    return buffer.getvalue()


def _figure(width: float, height: float, columns: int = 1) -> tuple[Figure, list]:
    figure = Figure(figsize=(width, height), layout="constrained")
    axes = figure.subplots(1, columns, squeeze=False)[0].tolist()
    for ax in axes:
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(alpha=0.3, linewidth=0.6)
    return figure, axes


def learning_curves(history: dict[str, list[dict]], titles: dict[str, str], metric: str = "accuracy") -> str | None:
    """Loss and ``metric`` per epoch for each stage: train solid, validation dashed."""
    if not any(history.values()):
        return None
    figure, (loss_ax, acc_ax) = _figure(11, 3.6, columns=2)
    for i, (stage, records) in enumerate(history.items()):
        color = COLORS[i % len(COLORS)]
        label = titles.get(stage, stage)
        for ax, key in ((loss_ax, "loss"), (acc_ax, metric)):
            for split, style in (("train", "-"), ("val", "--")):
                points = [(r["epoch"], r[f"{split}_{key}"]) for r in records if r.get(f"{split}_{key}") is not None]
                if points:
                    xs, ys = zip(*points, strict=True)
                    ax.plot(xs, ys, style, color=color, linewidth=1.5, label=f"{label} ({split})")
    loss_ax.set(title="loss", xlabel="epoch", yscale="log")
    acc_ax.set(title=metric.replace("_", "-"), xlabel="epoch")
    handles, labels = acc_ax.get_legend_handles_labels()
    figure.legend(handles, labels, fontsize=8, frameon=False, loc="outside right upper")
    return to_svg(figure)


def reliability_diagram(models: dict[str, dict]) -> str:
    """Accuracy against confidence per confidence bin; the diagonal is perfect calibration."""
    figure, (ax,) = _figure(4.8, 4.2)
    ax.plot([0, 1], [0, 1], ":", color="#555555", linewidth=1, label="perfectly calibrated")
    for i, entry in enumerate(models.values()):
        bins = [b for b in entry["reliability"] if b["count"]]
        ax.plot(
            [b["confidence"] for b in bins],
            [b["accuracy"] for b in bins],
            "o-",
            color=COLORS[i % len(COLORS)],
            markersize=3.5,
            linewidth=1.3,
            label=f"{entry['title']} (ECE {entry['ece']:.3f})",
        )
    ax.set(xlabel="confidence", ylabel="accuracy", xlim=(0, 1.02), ylim=(0, 1.02), title="reliability")
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    return to_svg(figure)


def confusion_matrices(models: dict[str, dict], class_names: list[str]) -> str:
    """One heatmap per model, rows normalised (each row shows where a true class went)."""
    count = len(models)
    size = min(3.6, max(2.6, 0.28 * len(class_names)))
    figure, axes = _figure(size * count + 0.6, size + 0.5, columns=count)
    annotate = len(class_names) <= 12
    ticks = range(len(class_names)) if len(class_names) <= 30 else []
    for ax, entry in zip(axes, models.values(), strict=True):
        ax.grid(False)
        rows = entry["confusion_matrix"]
        shares = [[c / max(sum(row), 1) for c in row] for row in rows]
        image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        ax.set(title=entry["title"], xlabel="predicted", ylabel="true")
        ax.set_xticks(list(ticks), [class_names[i] for i in ticks], fontsize=7)
        ax.set_yticks(list(ticks), [class_names[i] for i in ticks], fontsize=7)
        if annotate:
            for r, row in enumerate(rows):
                for c, value in enumerate(row):
                    if value:
                        white = shares[r][c] > 0.6
                        ax.text(c, r, str(value), ha="center", va="center", fontsize=6, color="white" if white else "k")
    figure.colorbar(image, ax=axes, shrink=0.8, label="share of the true class")
    return to_svg(figure)


def per_class_bars(
    models: dict[str, dict], class_names: list[str], key: str = "per_class_accuracy", ylabel: str = "test accuracy"
) -> str:
    """A score of every class (or label), one bar per model side by side: accuracy, or ``key``'s values."""
    figure, (ax,) = _figure(min(14, max(6, 0.45 * len(class_names) * len(models))), 3.4)
    width = 0.8 / len(models)
    for i, entry in enumerate(models.values()):
        values = [a if a is not None else 0 for a in entry[key]]
        positions = [c + (i - (len(models) - 1) / 2) * width for c in range(len(class_names))]
        ax.bar(positions, values, width, color=COLORS[i % len(COLORS)], label=entry["title"])
    low = min((a for e in models.values() for a in e[key] if a is not None), default=0)
    ax.set_ylim(max(0, low - 0.1), 1.0)
    ax.set_xticks(range(len(class_names)), class_names, fontsize=8, rotation=0 if len(class_names) <= 20 else 90)
    ax.set(xlabel="class" if key == "per_class_accuracy" else "label", ylabel=ylabel)
    figure.legend(fontsize=8, frameon=False, ncols=len(models), loc="outside upper center")
    return to_svg(figure)


def quality_vs_latency(
    models: dict[str, dict], batch_size: str, key: str = "accuracy", label: str = "test accuracy"
) -> str | None:
    """Each model as a point: CPU latency at ``batch_size`` (log scale) against its ``key`` score."""
    points = [(e["latency_ms"][batch_size], e[key], e["title"]) for e in models.values() if "latency_ms" in e]
    if not points:
        return None
    figure, (ax,) = _figure(5.2, 3.8)
    for i, (latency, accuracy, title) in enumerate(points):
        ax.scatter([latency], [accuracy], s=60, color=COLORS[i % len(COLORS)], zorder=3)
        ax.annotate(title, (latency, accuracy), xytext=(6, 4), textcoords="offset points", fontsize=8)
    ax.set_xscale("log")
    latencies = [p[0] for p in points]
    ax.set_xlim(min(latencies) / 2, max(latencies) * 3)
    ax.set(xlabel=f"CPU latency, batch {batch_size} (ms, log scale)", ylabel=label)
    ax.set_title(f"{label.removeprefix('test ')} versus latency (up and left is better)")
    return to_svg(figure)


def prediction_scatter(models: dict[str, dict]) -> str:
    """Predicted against true values of a regression target, one panel per model, the diagonal drawn."""
    figure, axes = _figure(min(16, 3.6 * len(models)), 3.6, columns=len(models))
    for i, (ax, entry) in enumerate(zip(axes, models.values(), strict=True)):
        scatter = entry["scatter"]
        true, predicted = scatter["true"], scatter["predicted"]
        ax.scatter(true, predicted, s=6, alpha=0.5, color=COLORS[i % len(COLORS)])
        low, high = min(true + predicted), max(true + predicted)
        ax.plot([low, high], [low, high], color="#555", linewidth=0.8)
        ax.set(title=entry["title"], xlabel=f"true {scatter['target']}", ylabel="predicted")
    return to_svg(figure)
