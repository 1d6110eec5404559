"""report.json (stable keys) and the terminal summary table of a run."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import torch
from rich.table import Table

import protege
from protege.config import EvaluateConfig, Recipe
from protege.console import log, out_console, quiet
from protege.data.dataset import DataBundle
from protege.evaluate import agreement, count_parameters, cpu_latency_ms, flops_per_example, predict_logits, quality
from protege.models.store import atomic_write_text

REPORT_VERSION = 1


def evaluate_model(model, data: DataBundle, config: EvaluateConfig) -> tuple[dict, torch.Tensor]:
    """Test-split quality and cost of one model; returns the entry and the test logits."""
    logits = predict_logits(model, data.test)
    entry = quality(logits, data.test.y)
    entry["parameters"] = count_parameters(model)
    entry["flops_per_example"] = flops_per_example(model, data.input_shape)
    if config.latency:
        threads = config.threads or torch.get_num_threads()
        entry["latency_ms"] = {
            str(b): cpu_latency_ms(model, data.input_shape, b, threads) for b in config.latency_batch_sizes
        }
        entry["latency_threads"] = threads
    return entry, logits


def build_report(recipe: Recipe, data: DataBundle, stages: dict, config: EvaluateConfig, seconds: float) -> dict:
    """Evaluate every stage's model on the test split and gather the run's numbers."""
    models: dict[str, dict] = {}
    logits_by_stage: dict[str, torch.Tensor] = {}
    for name, stage in stages.items():
        log(f"evaluating {name} on {len(data.test)} test examples")
        entry, logits = evaluate_model(stage.model, data, config)
        entry["architecture"] = stage.card.architecture
        entry["options"] = stage.card.options
        entry["training"] = stage.card.metrics
        if stage.model_dir is not None:
            entry["file_bytes"] = (stage.model_dir / "model.safetensors").stat().st_size
        models[name] = entry
        logits_by_stage[name] = logits
    if "teacher" in logits_by_stage:
        teacher = models["teacher"]
        for name in models:
            if name == "teacher":
                continue
            entry = models[name]
            entry.update(agreement(logits_by_stage[name], logits_by_stage["teacher"]))
            entry["accuracy_retained"] = entry["accuracy"] / teacher["accuracy"] if teacher["accuracy"] else None
            entry["compression"] = teacher["parameters"] / entry["parameters"]
            if "latency_ms" in entry and "latency_ms" in teacher:
                entry["speedup"] = {b: teacher["latency_ms"][b] / ms for b, ms in entry["latency_ms"].items()}
    return {
        "report_version": REPORT_VERSION,
        "protege_version": protege.__version__,
        "recipe": recipe.name,
        "seed": recipe.seed,
        "data": {
            "source": data.source,
            "num_classes": data.num_classes,
            "class_names": data.class_names,
            "input_shape": list(data.input_shape),
            "sizes": data.sizes(),
        },
        "models": models,
        "machine": {"platform": platform.platform(), "torch": torch.__version__, "threads": torch.get_num_threads()},
        "wall_seconds": seconds,
    }


def write_report(path: Path, report: dict) -> None:
    atomic_write_text(path, json.dumps(report, indent=2))


def print_summary(report: dict, titles: dict[str, str]) -> None:
    """The run's table: accuracy, agreement, size, FLOPs and latency of each model."""
    if quiet():
        return
    table = Table(title=f"protege · {report['recipe']} · {report['data']['source']} test set")
    has_teacher = "teacher" in report["models"]
    columns = ["model", "architecture", "test acc", "NLL", "agree w/ teacher", "params", "FLOPs/ex"]
    columns += ["latency b1", "latency b64", "train time"]
    for column in columns:
        if column == "agree w/ teacher" and not has_teacher:
            continue
        table.add_column(column, justify="left" if column in ("model", "architecture") else "right")
    for name, entry in report["models"].items():
        latency = entry.get("latency_ms", {})
        training = entry.get("training") or {}
        agree = [f"{entry['agreement']:.1%}" if "agreement" in entry else "–"] if has_teacher else []
        table.add_row(
            titles.get(name, name),
            entry["architecture"],
            f"{entry['accuracy']:.1%}",
            f"{entry['nll']:.3f}",
            *agree,
            f"{entry['parameters']:,}",
            _si(entry["flops_per_example"]),
            f"{latency['1']:.3f} ms" if "1" in latency else "–",
            f"{latency['64']:.3f} ms" if "64" in latency else "–",
            f"{training['train_seconds']:.1f}s" if "train_seconds" in training else "–",
        )
    out_console.print(table)


def _si(value: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.2f}{unit}"
    return f"{value:.0f}"
