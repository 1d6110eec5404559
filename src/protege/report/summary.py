"""report.json (stable keys) and the terminal summary table of a run."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import torch
from rich.markup import escape
from rich.table import Table

import protege
from protege.config import EvaluateConfig, Recipe
from protege.console import log, out_console, quiet
from protege.data.dataset import DataBundle
from protege.evaluate import (
    CALIBRATION_BINS,
    LATENCY_BLOCK_S,
    LATENCY_BUDGET_S,
    LATENCY_MIN_REPEATS,
    agreement,
    confusion_matrix,
    count_parameters,
    cpu_latency_ms,
    flops_per_example,
    per_class_accuracy,
    predict_logits,
    quality,
    reliability_bins,
)
from protege.metrics_file import read_records
from protege.models.store import atomic_write_text
from protege.report.fairness import compare_to_teacher, slice_accuracy

REPORT_VERSION = 2
"""Bumped when a key changes meaning or disappears; new keys may appear within a version (docs/report.md)."""

CURVE_KEYS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds")


def evaluate_model(model, data: DataBundle, config: EvaluateConfig) -> tuple[dict, torch.Tensor]:
    """Test-split quality and cost of one model; returns the entry and the test logits."""
    logits = predict_logits(model, data.test)
    entry = quality(logits, data.test.y)
    matrix = confusion_matrix(logits, data.test.y)
    entry["per_class_accuracy"] = per_class_accuracy(matrix)
    entry["confusion_matrix"] = matrix
    entry["reliability"] = reliability_bins(logits, data.test.y)
    if data.test_groups is not None:
        entry["per_group_accuracy"] = slice_accuracy(data.test_groups, logits.argmax(-1) == data.test.y)
    entry["parameters"] = count_parameters(model)
    entry["flops_per_example"] = flops_per_example(model, data.input_shape)
    if config.latency:
        threads = config.threads or torch.get_num_threads()
        entry["latency_ms"] = {
            str(b): cpu_latency_ms(model, data.input_shape, b, threads) for b in config.latency_batch_sizes
        }
        entry["throughput_per_s"] = {b: int(b) * 1e3 / ms for b, ms in entry["latency_ms"].items()}
        entry["latency_threads"] = threads
    return entry, logits


def build_report(
    recipe: Recipe,
    data: DataBundle,
    stages: dict,
    config: EvaluateConfig,
    seconds: float,
    titles: dict[str, str] | None = None,
    history: dict[str, list[dict]] | None = None,
) -> dict:
    """Evaluate every stage's model on the test split and gather the run's numbers."""
    return assemble_report(
        {name: (stage.model, stage.card, stage.model_dir) for name, stage in stages.items()},
        data,
        config,
        name=recipe.name,
        seed=recipe.seed,
        seconds=seconds,
        titles=titles,
        history=history,
    )


def assemble_report(
    models_in: dict,
    data: DataBundle,
    config: EvaluateConfig,
    *,
    name: str,
    seed: int | None,
    seconds: float,
    titles: dict[str, str] | None = None,
    history: dict[str, list[dict]] | None = None,
) -> dict:
    """The report of ``models_in`` ({name: (module, card, model dir or None)}); a model named ``teacher``
    is the reference every other model is compared with."""
    models: dict[str, dict] = {}
    logits_by_model: dict[str, torch.Tensor] = {}
    for key, (module, card, model_dir) in models_in.items():
        log(f"evaluating {key} on {len(data.test)} test examples")
        entry, logits = evaluate_model(module, data, config)
        entry["title"] = (titles or {}).get(key, key)
        entry["architecture"] = card.architecture
        entry["options"] = card.options
        entry["training"] = card.metrics
        if model_dir is not None:
            entry["file_bytes"] = (Path(model_dir) / "model.safetensors").stat().st_size
        models[key] = entry
        logits_by_model[key] = logits
    fairness = {}
    if "teacher" in logits_by_model:
        teacher = models["teacher"]
        for key, entry in models.items():
            if key == "teacher":
                continue
            entry.update(agreement(logits_by_model[key], logits_by_model["teacher"]))
            entry["accuracy_retained"] = entry["accuracy"] / teacher["accuracy"] if teacher["accuracy"] else None
            entry["compression"] = teacher["parameters"] / entry["parameters"]
            entry["flops_reduction"] = teacher["flops_per_example"] / max(entry["flops_per_example"], 1)
            if "file_bytes" in entry and "file_bytes" in teacher:
                entry["file_compression"] = teacher["file_bytes"] / entry["file_bytes"]
            if "latency_ms" in entry and "latency_ms" in teacher:
                entry["speedup"] = {b: teacher["latency_ms"][b] / ms for b, ms in entry["latency_ms"].items()}
            fairness[key] = compare_to_teacher(
                data.class_names,
                data.test.y,
                logits_by_model["teacher"],
                logits_by_model[key],
                config.fairness_margin,
                data.test_groups,
            )
    data_section = {
        "source": data.source,
        "num_classes": data.num_classes,
        "class_names": data.class_names,
        "input_shape": list(data.input_shape),
        "sizes": data.sizes(),
    }
    if data.test_groups is not None:
        data_section["groups"] = sorted(set(data.test_groups))
    return {
        "report_version": REPORT_VERSION,
        "protege_version": protege.__version__,
        "recipe": name,
        "seed": seed,
        "data": data_section,
        "models": models,
        "fairness": fairness,
        "history": history or {},
        "evaluation": {
            "latency": config.latency,
            "latency_batch_sizes": config.latency_batch_sizes,
            "threads": (config.threads or torch.get_num_threads()) if config.latency else None,
            "latency_min_repeats": LATENCY_MIN_REPEATS,
            "latency_block_ms": LATENCY_BLOCK_S * 1e3,
            "latency_budget_s": LATENCY_BUDGET_S,
            "calibration_bins": CALIBRATION_BINS,
            "fairness_margin": config.fairness_margin,
        },
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        },
        "wall_seconds": seconds,
    }


def read_history(metrics_path: Path) -> dict[str, list[dict]]:
    """Learning curves from metrics.jsonl: per stage, per epoch, the losses, accuracies and learning rate."""
    history: dict[str, list[dict]] = {}
    for record in read_records(metrics_path):
        curve = {k: record[k] for k in CURVE_KEYS if k in record}
        history.setdefault(record.get("stage", "train"), []).append(curve)
    return history


def write_report(path: Path, report: dict) -> None:
    atomic_write_text(path, json.dumps(report, indent=2))


def print_summary(report: dict, titles: dict[str, str] | None = None) -> None:
    """The run's table: quality, agreement, size, FLOPs and latency of each model, then fairness flags."""
    if quiet():
        return
    table = Table(title=f"protege · {report['recipe']} · {report['data']['source']} test set")
    has_teacher = "teacher" in report["models"]
    batch_sizes = [str(b) for b in report.get("evaluation", {}).get("latency_batch_sizes", [])]
    if not batch_sizes:  # a report without the evaluation block: take what the entries measured
        batch_sizes = list(next(iter(report["models"].values()), {}).get("latency_ms", {}))
    columns = ["model", "arch", "test acc", "macro-F1", "NLL", "ECE"]
    columns += ["agreement"] if has_teacher else []
    columns += ["params", "FLOPs/ex", *(f"latency b{b}" for b in batch_sizes)]
    columns += [f"speed-up b{batch_sizes[0]}"] if has_teacher and batch_sizes else []
    columns += ["train time"]
    for column in columns:
        table.add_column(column, justify="left" if column in ("model", "arch") else "right", no_wrap=True)
    for name, entry in report["models"].items():
        latency = entry.get("latency_ms", {})
        training = entry.get("training") or {}
        row = [
            (titles or {}).get(name) or entry.get("title", name),
            entry["architecture"],
            f"{entry['accuracy']:.1%}",
            _fmt(entry.get("macro_f1"), "{:.3f}"),
            f"{entry['nll']:.3f}",
            _fmt(entry.get("ece"), "{:.3f}"),
        ]
        if has_teacher:
            row.append(_fmt(entry.get("agreement"), "{:.1%}"))
        row += [f"{entry['parameters']:,}", _si(entry["flops_per_example"])]
        row += [f"{latency[b]:.3f} ms" if b in latency else "–" for b in batch_sizes]
        if has_teacher and batch_sizes:
            row.append(_fmt(entry.get("speedup", {}).get(batch_sizes[0]), "{:.1f}×"))
        row.append(f"{training['train_seconds']:.1f}s" if "train_seconds" in training else "–")
        table.add_row(*row)
    out_console.print(table)
    for name, section in report.get("fairness", {}).items():
        flagged = section["per_class"]["flagged"] + section.get("per_group", {}).get("flagged", [])
        if flagged:
            title = report["models"][name].get("title", name)
            # a warning, so on stderr with the log: stdout keeps the table alone
            log(
                f"[yellow]fairness[/]: {escape(title)} lost more than {section['per_class']['margin']:.0%} beyond "
                f"its average drop on: {escape(', '.join(flagged))}"
            )


def _fmt(value: float | None, pattern: str) -> str:
    return "–" if value is None else pattern.format(value)


def _si(value: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.2f}{unit}"
    return f"{value:.0f}"
