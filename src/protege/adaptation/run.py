"""An adaptation recipe end to end: the two domains, each method's stage (plan.py), AdaBN's pass over the
source-only model, then every model scored on the target's and the source's test split: the report's
``adaptation`` block beside the usual per-model entries (which, as in every run, score the source's test
split, the recipe's data)."""

from __future__ import annotations

import copy
import time

from rich.table import Table

from protege.adaptation.adabn import adapt_batchnorm
from protege.adaptation.evaluate import A_DISTANCE, measure
from protege.adaptation.methods import ADABN, SOURCE_ONLY, paper
from protege.adaptation.plan import AdaptationPlan
from protege.adaptation.target import Domains, build_domains
from protege.config import Recipe
from protege.console import log
from protege.data.dataset import DataBundle
from protege.distributed import is_main_process, wait_for_everyone
from protege.models import save_model
from protege.plan import StageContext, StageResult, run_plan
from protege.report.summary import assemble_report

SELECTION = {
    "source": "each method ends with its best epoch on the source's validation split (no target label is read)",
    "last": "each method ends with its final epoch (no validation split picks it)",
    "target_val": "each method ends with its best epoch on a labelled target validation split (an oracle: it reads "
    "target labels, which unsupervised adaptation does not have; the test split is never read)",
}


def run_adaptation(recipe: Recipe, context: StageContext, seconds_so_far: float):
    """Train every method, score every model; returns the stages to report and the report."""
    config = recipe.adaptation
    assert config is not None
    data = context.data
    domains = build_domains(data, config, recipe.seed)
    log(f"adaptation: target {domains.how}; " + ", ".join(f"{k} {v}" for k, v in domains.describe()["sizes"].items()))
    plan = AdaptationPlan(recipe, data, domains)
    results = run_plan(plan.stages(context.results), context)
    models: dict[str, StageResult] = {}
    for name in plan.names:
        models[name] = adabn_stage(results[SOURCE_ONLY], domains, plan, context) if name == ADABN else results[name]
    report_models = {name: (r.model, r.card, r.model_dir) for name, r in models.items()}
    report = assemble_report(
        report_models, data, recipe.evaluate, name=recipe.name, seed=recipe.seed, seconds=seconds_so_far,
        titles={name: name for name in models}, roles={name: "student" for name in models},
    )  # fmt: skip
    block = measure(models, data, domains, config.features, recipe.seed)
    block.update(domains.describe())
    block.update({"select": config.select, "selection": SELECTION[config.select], "a_distance": A_DISTANCE,
                  "features": config.features or "the input of the model's head"})  # fmt: skip
    report["adaptation"] = block
    return models, report


def adabn_stage(source_only: StageResult, domains: Domains, plan: AdaptationPlan, context: StageContext) -> StageResult:
    """The source-only model with its BatchNorm statistics re-estimated on the target's training inputs,
    saved as the ``adabn`` stage (recomputed on resume: it is deterministic and costs one pass)."""
    started = time.perf_counter()
    model = adapt_batchnorm(copy.deepcopy(source_only.model), domains.target_train.x, plan.train_config().batch_size)
    card = copy.deepcopy(source_only.card)
    note = {"method": ADABN, "paper": paper(ADABN), "target": domains.how, "adapted_from": SOURCE_ONLY,
            "seconds": time.perf_counter() - started}  # fmt: skip
    card.metrics = {**card.metrics, "adaptation": note}
    model_dir = context.run_dir / ADABN / "model"
    if is_main_process():
        save_model(model, card, model_dir)
    wait_for_everyone()
    log(f"[bold]{ADABN}[/]: BatchNorm statistics of {SOURCE_ONLY} re-estimated on {len(domains.target_train)} "
        "target inputs")  # fmt: skip
    return StageResult(ADABN, model, card, model_dir=model_dir, role="student")


def describe_plan(recipe: Recipe, data: DataBundle) -> list[Table]:
    """``--dry-run``: the two domains, then each method and what it trains on."""
    config = recipe.adaptation
    assert config is not None and recipe.student is not None
    domains = build_domains(data, config, recipe.seed)
    plan = AdaptationPlan(recipe, data, domains)
    sizes = domains.describe()["sizes"]
    table = Table(title=f"adaptation · target: {domains.how}", caption=SELECTION[config.select])
    for column in ("method", "trains on", "loss"):
        table.add_column(column)
    for name in plan.names:
        step = plan.steps.get(name)
        if name == ADABN:
            statistics = f"BatchNorm statistics on {sizes['target_train']} target inputs"
            table.add_row(name, f"{SOURCE_ONLY}'s model", statistics)
        elif step is None:
            table.add_row(name, f"{sizes['source_train']} source examples", "the student's objective")
        else:
            trains = f"{sizes['source_train']} source + {sizes['target_train']} unlabelled target examples"
            table.add_row(name, trains, step.summary)
    return [table]
