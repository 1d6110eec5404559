"""``protege forget <run> --examples FILE``: a finished run's model forgets the named training examples
into a new run directory (the unlearned model, its evaluation, the audit trail ``unlearning.json``). The
run it starts from is only read, never written: its files stay byte for byte as they were."""

from __future__ import annotations

import time
from pathlib import Path

from protege.config import Recipe
from protege.console import log
from protege.errors import ConfigError
from protege.plan import StageContext
from protege.unlearning.config import ForgetConfig
from protege.unlearning.forget_set import forget_positions

EXACT = "sisa"


def forget_run(
    run: Path,
    request: ForgetConfig,
    method: str,
    output: Path | None = None,
    overwrite: bool = False,
    epochs: int | None = None,
    lr: float | None = None,
    retrain: bool = False,
):
    """Unlearn ``request`` from the model of ``run`` with ``method`` (an approximate method's name, or
    ``sisa`` for exact unlearning of a run trained with shards) into ``output``."""
    from protege.pipeline import RunResult, load_recipe_data, run_directory
    from protege.recipe_reader import load_recipe
    from protege.rundir import run_containing
    from protege.unlearning.run import run_unlearning

    run = Path(run)
    if not (run / "config.yaml").is_file():
        raise ConfigError(f"{run} is not a protege run directory (no config.yaml); give the run to forget from")
    trained = load_recipe(run / "config.yaml")
    recipe = forget_recipe(trained, request, method, epochs, lr, run)
    target = Path(output) if output is not None else run.with_name(f"{run.name}-forget-{method}")
    if run_containing(target.resolve()) == run.resolve() or target.resolve() == run.resolve():
        raise ConfigError(f"{target} is inside {run}; forgetting never writes into the run it starts from")
    started = time.perf_counter()
    data = load_recipe_data(recipe)
    assert recipe.unlearning is not None
    forget_positions(data, recipe.unlearning.forget, recipe.seed)  # a bad id is refused before anything is written
    with run_directory(target, recipe, resume=False, overwrite=overwrite):
        log(f"forget: from {run} into {target} with {method}")
        context = StageContext(data, target)
        stages, report = run_unlearning(recipe, context, time.perf_counter() - started, run, retrain)
        from protege.report.html import write_html
        from protege.report.summary import print_summary, write_report

        write_report(target / "report.json", report)
        if recipe.evaluate.html:
            write_html(target / "report.html", report)
        print_summary(report)
        return RunResult(target, stages, report)


def forget_recipe(
    trained: Recipe, request: ForgetConfig, method: str, epochs: int | None, lr: float | None, run: Path
) -> Recipe:
    """The recipe of the forgetting run: the trained run's data and student, the request, the method."""
    student = trained.student
    if student is None or student.train is None:
        raise ConfigError(f"{run} trained no student to forget from")
    previous = trained.unlearning
    if method == EXACT and (previous is None or previous.sisa is None):
        raise ConfigError(
            f"{run} was not trained with shards, so exact unlearning (sisa) cannot retrain only some of them; "
            "train with unlearning.sisa, or pick an approximate method (finetune, neggrad, random_label, scrub, "
            "bad_teacher)"
        )
    block: dict = {
        "forget": request.model_dump(by_alias=True, exclude_none=True),
        "methods": [] if method == EXACT else [method],
        "sisa": previous.sisa.model_dump() if method == EXACT and previous is not None and previous.sisa else None,
    }
    if epochs is not None:
        block["epochs"] = epochs
    if lr is not None:
        block["lr"] = lr
    raw = {
        "name": f"{trained.name}-forget",
        "seed": trained.seed,
        "data": trained.data.model_dump(mode="json"),
        "student": {
            "model": student.model.model_dump(mode="json"),
            "train": student.train.model_dump(mode="json"),
            "objective": [o.model_dump(mode="json") for o in student.objectives],
        },
        "unlearning": block,
        "evaluate": trained.evaluate.model_dump(mode="json"),
    }
    from protege.recipe_reader import recipe_from_dict

    return recipe_from_dict(raw, origin=f"forget {run}")
