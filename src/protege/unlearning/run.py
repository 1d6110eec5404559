"""An unlearning recipe end to end: the forget request, the plan (original, retrained reference, each
method, SISA), every model measured against the retrained one, the report's ``unlearning`` block and the
audit trail ``unlearning.json`` (what was forgotten, by hash; how; what it cost; what was measured)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from protege.config import Recipe
from protege.console import log
from protege.distributed import is_main_process
from protege.models.store import atomic_write_text
from protege.plan import StageContext, StageResult, run_plan
from protege.report.summary import assemble_report
from protege.unlearning.evaluation import evaluate_forgetting
from protege.unlearning.forget_set import example_hashes, forget_positions, split_training
from protege.unlearning.plan import ORIGINAL, RETRAINED, UnlearningPlan
from protege.unlearning.sisa import aggregate

AUDIT_FILE = "unlearning.json"


def run_unlearning(
    recipe: Recipe,
    context: StageContext,
    seconds_so_far: float,
    trained_run: Path | None = None,
    retrain: bool = True,
):
    """Train (or load, from ``trained_run``), forget, measure; returns the stages to report and the report."""
    assert recipe.unlearning is not None
    data = context.data
    positions, how = forget_positions(data, recipe.unlearning.forget, recipe.seed)
    split = split_training(data, positions, how)
    log(f"forget: {how}; {len(split.forget)} forgotten, {len(split.retain)} retained")
    plan = UnlearningPlan(recipe, split, context, trained_run, retrain)
    results = run_plan(plan.stages(context.results), context)
    names = (ORIGINAL, *([RETRAINED] if retrain else []), *(n for n, _ in plan.methods))
    models = {name: results[name] for name in names}
    block = measure(models, _sisa_models(plan, results), split, data.test, plan, results)
    if trained_run is not None:
        block["trained_run"] = str(trained_run)
    shown = {name: r for name, r in models.items() if not (trained_run is not None and name == ORIGINAL)}
    report_models = {name: (r.model, r.card, r.model_dir) for name, r in (shown or models).items()}
    report = assemble_report(
        report_models, data, recipe.evaluate, name=recipe.name, seed=recipe.seed, seconds=seconds_so_far,
        titles={name: name for name in report_models}, roles={name: "student" for name in report_models},
    )  # fmt: skip
    report["unlearning"] = block
    if is_main_process():
        write_audit(context.run_dir / AUDIT_FILE, split, block, recipe)
    return models, report


def _sisa_models(plan: UnlearningPlan, results: dict[str, StageResult]) -> dict[str, torch.nn.Module]:
    sisa = plan.config.sisa
    if sisa is None:
        return {}
    before = aggregate([results[n].model for n in plan.sisa_before], sisa.aggregate)
    after = aggregate([results[n].model for n in plan.sisa_after], sisa.aggregate)
    return {"sisa_before": before, "sisa": after}


def measure(models, extra, split, test, plan: UnlearningPlan, results) -> dict:
    """The table of the report: each model's measures, its time, and SISA's costs."""
    reference_entry, reference_logits = (
        evaluate_forgetting(models[RETRAINED].model, split, test, None) if RETRAINED in models else ({}, None)
    )
    entries = {}
    for name, result in {**{k: v.model for k, v in models.items()}, **extra}.items():
        entry, _ = evaluate_forgetting(result, split, test, reference_logits)
        entry["seconds"] = _seconds(name, plan, results)
        entries[name] = entry
    retrain_seconds = entries[RETRAINED]["seconds"] if RETRAINED in entries else None
    for entry in entries.values():
        if entry["seconds"] is not None and retrain_seconds:
            entry["share_of_retraining"] = entry["seconds"] / retrain_seconds
        for key in ("forget_accuracy", "retain_accuracy", "test_accuracy", "mia_auc"):
            if reference_entry:
                entry[f"{key}_gap"] = entry[key] - reference_entry[key]
    block = {"forgot": split.how, "forget_size": len(split.forget), "retain_size": len(split.retain), "models": entries}
    if plan.config.sisa is not None:
        # without a retrained reference, the original's training (on every example) stands for retraining
        block["sisa"] = _sisa_costs(plan, results, retrain_seconds or entries[ORIGINAL]["seconds"])
        block["sisa"]["retraining_measured"] = retrain_seconds is not None
    return block


def _seconds(name: str, plan: UnlearningPlan, results) -> float | None:
    """Training time of a model: a stage's own, SISA's deletion (the retrained shards) or its first training."""
    if name == "sisa":
        return sum(_train_seconds(results[n]) for n in plan.deletion_stages)
    if name == "sisa_before":
        return sum(_train_seconds(r) for n, r in results.items() if n.startswith("sisa_shard"))
    return _train_seconds(results[name])


def _train_seconds(result: StageResult) -> float:
    return float(result.card.metrics.get("train_seconds") or 0.0)


def _sisa_costs(plan: UnlearningPlan, results, retrain_seconds: float) -> dict:
    sisa = plan.config.sisa
    assert sisa is not None and plan.shards is not None
    deletion = sum(_train_seconds(results[n]) for n in plan.deletion_stages)
    touched = sum(1 for before, after in zip(plan.sisa_before, plan.sisa_after, strict=True) if before != after)
    return {
        "shards": sisa.shards,
        "slices": sisa.slices,
        "aggregate": sisa.aggregate,
        "shards_retrained": touched,
        "slices_retrained": len(plan.deletion_stages),
        "deletion_seconds": deletion,
        "retraining_seconds": retrain_seconds,
        "speedup_over_retraining": retrain_seconds / deletion if deletion and retrain_seconds else None,
    }


def write_audit(path: Path, split, block: dict, recipe: Recipe) -> None:
    """What a data-protection officer reads: the forgotten examples by SHA-256 of their content, the
    request, the methods and their measured forgetting against the retrained model."""
    summary = {
        name: {k: v for k, v in entry.items() if k != "loss_histogram"} for name, entry in block["models"].items()
    }
    audit = {
        "request": split.how,
        "forgotten_examples": len(split.forget),
        "forgotten_sha256": example_hashes(split.forget),
        "hash": "sha256 of each example's input tensor bytes followed by its label's",
        "methods": [m.name for m in recipe.unlearning.methods] + (["sisa"] if recipe.unlearning.sisa else []),
        "reference": "retrained: the same model and seed trained from scratch without the forgotten examples",
        "evaluation": summary,
        "best_mia_gap": min(
            (abs(e["mia_auc_gap"]) for n, e in summary.items() if n != RETRAINED and "mia_auc_gap" in e), default=None
        ),
    }
    atomic_write_text(path, json.dumps(audit, indent=2) + "\n")
