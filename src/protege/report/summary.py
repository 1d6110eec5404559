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
    text_latency_ms,
)
from protege.metrics_file import read_records
from protege.models.store import atomic_write_text
from protege.report import task_views
from protege.report.fairness import compare_to_teacher, slice_accuracy

REPORT_VERSION = 2
"""Bumped when a key changes meaning or disappears; new keys may appear within a version (docs/report.md)."""

METRIC_NAMES = ("accuracy", "micro_f1", "macro_f1", "mae", "rmse", "r2", "mean_score")
CURVE_KEYS = (
    "epoch", "lr", "seconds", "train_loss", "val_loss", *(f"{s}_{m}" for s in ("train", "val") for m in METRIC_NAMES)
)  # fmt: skip
"""What the learning curves keep of each metrics.jsonl record."""


def evaluate_model(model, data: DataBundle, config: EvaluateConfig) -> tuple[dict, torch.Tensor]:
    """Test-split quality and cost of one model; returns the entry and the test logits."""
    logits = predict_logits(model, data.test)
    if data.task == "classification":
        entry = quality(logits, data.test.y)
        matrix = confusion_matrix(logits, data.test.y)
        entry["per_class_accuracy"] = per_class_accuracy(matrix)
        entry["confusion_matrix"] = matrix
        entry["reliability"] = reliability_bins(logits, data.test.y)
        if data.test_groups is not None:
            entry["per_group_accuracy"] = slice_accuracy(data.test_groups, logits.argmax(-1) == data.test.y)
    else:
        entry = task_views.quality(data.task, logits, data.test.y, data.class_names)
    entry["parameters"] = count_parameters(model)
    entry["flops_per_example"] = flops_per_example(model, data.input_shape)
    if config.latency:
        threads = config.threads or torch.get_num_threads()
        entry["latency_ms"] = {
            str(b): cpu_latency_ms(model, data.input_shape, b, threads) for b in config.latency_batch_sizes
        }
        entry["throughput_per_s"] = {b: int(b) * 1e3 / ms for b, ms in entry["latency_ms"].items()}
        entry["latency_threads"] = threads
        if data.text_encoder is not None and data.test_texts is not None and len(data.test_texts):
            entry["latency_from_text_ms"] = {
                str(b): text_latency_ms(model, data.text_encoder, data.test_texts, b, threads)
                for b in config.latency_batch_sizes
            }
    return entry, logits


def build_report(
    recipe: Recipe,
    data: DataBundle,
    stages: dict,
    config: EvaluateConfig,
    seconds: float,
    history: dict[str, list[dict]] | None = None,
) -> dict:
    """Evaluate every stage's model on the test split and gather the run's numbers; the stage whose role
    is ``teacher`` is the reference the others are compared with."""
    roles = {name: stage.role for name, stage in stages.items()}
    return assemble_report(
        {name: (stage.model, stage.card, stage.model_dir) for name, stage in stages.items()},
        data,
        config,
        name=recipe.name,
        seed=recipe.seed,
        seconds=seconds,
        titles=model_titles(roles, {name: stage.card for name, stage in stages.items()}),
        history=history,
        roles=roles,
        views={name: stage.data for name, stage in stages.items() if stage.data is not None},
    )


def model_titles(roles: dict[str, str], cards: dict) -> dict[str, str]:
    """How the summary names each model, from its role: the teacher (or teacher ensemble), the student
    alone, the student distilled, born-again generations by number, a teacher of several by its name."""
    generations = sum(role == "generation" for role in roles.values())
    titles = {}
    for name, role in roles.items():
        card = cards[name]
        if role == "teacher":
            titles[name] = "teacher ensemble" if card.architecture == "ensemble" else "teacher"
        elif role == "baseline":
            titles[name] = "student alone"
        elif role == "generation":
            titles[name] = name.replace("student_gen", "student gen ")
        elif role == "student" and generations:
            titles[name] = f"student gen {generations + 1}"
        elif role == "student" and name.startswith("student"):
            titles[name] = "student distilled" if card.metrics.get("teacher_mode") is not None else "student"
        else:
            titles[name] = name.replace("_", " ")
    return titles


def reference_of(roles: dict[str, str]) -> str | None:
    """The model the others are compared with: the one whose role is ``teacher``."""
    return next((name for name, role in roles.items() if role == "teacher"), None)


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
    roles: dict[str, str] | None = None,
    views: dict[str, DataBundle] | None = None,
) -> dict:
    """The report of ``models_in`` ({name: (module, card, model dir or None)}); the model whose role is
    ``teacher`` (without roles: the one named ``teacher``) is the reference every other one is compared with.
    A model named in ``views`` is scored on its own view of the test examples (the same examples, in the
    same order, through its own encoder: protege.data.views)."""
    roles = roles or {key: "teacher" if key == "teacher" else "student" for key in models_in}
    models: dict[str, dict] = {}
    logits_by_model: dict[str, torch.Tensor] = {}
    for key, (module, card, model_dir) in models_in.items():
        log(f"evaluating {key} on {len(data.test)} test examples")
        entry, logits = evaluate_model(module, (views or {}).get(key, data), config)
        entry["title"] = (titles or {}).get(key, key)
        entry["role"] = roles.get(key, "student")
        entry["architecture"] = card.architecture
        entry["options"] = card.options
        entry["training"] = card.metrics
        if model_dir is not None:
            entry["file_bytes"] = (Path(model_dir) / "model.safetensors").stat().st_size
        models[key] = entry
        logits_by_model[key] = logits
    reference = reference_of(roles)
    fairness = _compare_with_teacher(models, logits_by_model, reference, data, config) if reference else {}
    data_section = {
        "source": data.source,
        "task": data.task,
        "num_classes": data.num_classes,
        "class_names": data.class_names,
        "input_shape": list(data.input_shape),
        "sizes": data.sizes(),
    }
    if data.test_groups is not None:
        data_section["groups"] = sorted(set(data.test_groups))
    return _report(name, seed, data_section, models, reference, fairness, history, config, seconds)


def _compare_with_teacher(
    models: dict[str, dict], logits_by_model: dict, reference: str, data: DataBundle, config: EvaluateConfig
) -> dict:
    """Each model against the reference: agreement, what it kept, compression, speed-up; and, for
    classification, the fairness check per class and group."""
    fairness = {}
    teacher = models[reference]
    for key, entry in models.items():
        if key == reference:
            continue
        if data.task == "classification":
            entry.update(agreement(logits_by_model[key], logits_by_model[reference]))
            entry["accuracy_retained"] = entry["accuracy"] / teacher["accuracy"] if teacher["accuracy"] else None
        else:
            entry.update(
                task_views.against_teacher(data.task, logits_by_model[key], logits_by_model[reference], entry, teacher)
            )
        entry["compression"] = teacher["parameters"] / entry["parameters"]
        entry["flops_reduction"] = teacher["flops_per_example"] / max(entry["flops_per_example"], 1)
        if "file_bytes" in entry and "file_bytes" in teacher:
            entry["file_compression"] = teacher["file_bytes"] / entry["file_bytes"]
        for latency, speedup in (("latency_ms", "speedup"), ("latency_from_text_ms", "speedup_from_text")):
            if latency in entry and latency in teacher:
                entry[speedup] = {
                    b: teacher[latency][b] / ms for b, ms in entry[latency].items() if b in teacher[latency]
                }
        if data.task == "classification":
            fairness[key] = compare_to_teacher(
                data.class_names,
                data.test.y,
                logits_by_model[reference],
                logits_by_model[key],
                config.fairness_margin,
                data.test_groups,
            )
    return fairness


def _report(
    name: str,
    seed: int | None,
    data_section: dict,
    models: dict,
    reference: str | None,
    fairness: dict,
    history: dict | None,
    config: EvaluateConfig,
    seconds: float,
) -> dict:
    """The report's document: its keys are documented in docs/report.md."""
    return {
        "report_version": REPORT_VERSION,
        "protege_version": protege.__version__,
        "recipe": name,
        "seed": seed,
        "task": data_section["task"],
        "reference": reference,
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
    task = report.get("task", "classification")
    has_teacher = report_reference(report) is not None
    quality = task_views.QUALITY[task]
    agreement_column = task_views.AGAINST_TEACHER[task][0]
    batch_sizes = [str(b) for b in report.get("evaluation", {}).get("latency_batch_sizes", [])]
    if not batch_sizes:  # a report without the evaluation block: take what the entries measured
        batch_sizes = list(next(iter(report["models"].values()), {}).get("latency_ms", {}))
    short = {"test accuracy": "test acc", "agreement with teacher": "agreement"}
    columns = ["model", "arch", *(short.get(c.heading, c.heading) for c in quality)]
    robust = "robust" in report.get("evaluation", {})
    columns += ["robust acc"] if robust else []
    columns += [short.get(agreement_column.heading, agreement_column.heading)] if has_teacher else []
    kept = has_teacher and task == "classification"
    columns += ["acc kept"] if kept else []
    columns += ["params", "FLOPs/ex", *(f"latency b{b}" for b in batch_sizes)]
    columns += [f"speed-up b{batch_sizes[0]}"] if has_teacher and batch_sizes else []
    from_text = has_teacher and batch_sizes and any("speedup_from_text" in e for e in report["models"].values())
    columns += [f"from text b{batch_sizes[0]}"] if from_text else []
    columns += ["train time"]
    names = [(titles or {}).get(name) or entry.get("title", name) for name, entry in report["models"].items()]
    for column in columns:
        widest = max([len(column), *map(len, names)]) if column == "model" else len(column)  # headings stay whole
        justify = "left" if column in ("model", "arch") else "right"
        table.add_column(column, justify=justify, no_wrap=True, min_width=widest)
    for title, entry in zip(names, report["models"].values(), strict=True):
        latency = entry.get("latency_ms", {})
        training = entry.get("training") or {}
        row = [
            title,
            entry["architecture"],
            *(column.format(entry.get(column.key)) for column in quality),
        ]
        if robust:
            row.append(_fmt(entry.get("robust_accuracy"), "{:.1%}"))
        if has_teacher:
            row.append(agreement_column.format(entry.get(agreement_column.key)))
        if kept:
            row.append(_fmt(entry.get("accuracy_retained"), "{:.1%}"))
        row += [f"{entry['parameters']:,}", _si(entry["flops_per_example"])]
        row += [f"{latency[b]:.3f} ms" if b in latency else "–" for b in batch_sizes]
        if has_teacher and batch_sizes:
            row.append(_fmt(entry.get("speedup", {}).get(batch_sizes[0]), "{:.1f}×"))
        if from_text:
            row.append(_fmt(entry.get("speedup_from_text", {}).get(batch_sizes[0]), "{:.1f}×"))
        row.append(f"{training['train_seconds']:.1f}s" if "train_seconds" in training else "–")
        table.add_row(*row)
    out_console.print(table)
    _print_paradigm_tables(report, robust)
    _warn_fairness(report)


def _warn_fairness(report: dict) -> None:
    """One warning per model that lost more on some classes or groups than its average drop."""
    for name, section in report.get("fairness", {}).items():
        flagged = section["per_class"]["flagged"] + section.get("per_group", {}).get("flagged", [])
        if flagged:
            title = report["models"][name].get("title", name)
            # a warning, so on stderr with the log: stdout keeps the table alone
            log(
                f"[yellow]fairness[/]: {escape(title)} lost more than {section['per_class']['margin']:.0%} beyond "
                f"its average drop on: {escape(', '.join(flagged))}"
            )


def _print_paradigm_tables(report: dict, robust: bool) -> None:
    """The tables of a continual, robust, multi-task, unlearning or adaptation report, under the models table."""
    if "continual" in report:
        from protege.report.continual import continual_table

        out_console.print(continual_table(report["continual"]))
    if robust:
        from protege.report.robust import robust_table

        out_console.print(robust_table(report))
    if "multitask" in report:
        from protege.multitask.report import multitask_table

        out_console.print(multitask_table(report["multitask"]))
    if "unlearning" in report:
        from protege.report.unlearning import unlearning_table

        out_console.print(unlearning_table(report["unlearning"]))
    if "adaptation" in report:
        from protege.report.adaptation import adaptation_table

        out_console.print(adaptation_table(report["adaptation"]))


def report_reference(report: dict) -> str | None:
    """The model a report compares the others with (reports before roles: the one named ``teacher``)."""
    if "reference" in report:
        return report["reference"]
    return "teacher" if "teacher" in report["models"] else None


def _fmt(value: float | None, pattern: str) -> str:
    return "–" if value is None else pattern.format(value)


def _si(value: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.2f}{unit}"
    return f"{value:.0f}"
