"""``protege evaluate``: the report of models that were trained earlier (a run directory, or one model
directory with an optional teacher), on any data source with the same classes and input shape."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch

from protege.config import EvaluateConfig, load_recipe
from protege.data.build import load_data
from protege.data.dataset import ArrayDataset, DataBundle
from protege.errors import ConfigError, DataError
from protege.files import check_writable_dir, check_writable_file
from protege.models import load_run_model, resolve_run_path
from protege.report.html import write_html
from protege.report.summary import assemble_report, print_summary, read_history, write_report

STAGES = ("teacher", "student_baseline", "student")


@dataclasses.dataclass
class DataRequest:
    """A data source named on the command line and how to split it (the test split is what is scored)."""

    source: str
    options: dict = dataclasses.field(default_factory=dict)
    test_fraction: float = 0.2
    seed: int = 0


def run_stages(path: Path) -> dict[str, Path]:
    """The stage model directories of a run directory, in pipeline order; empty for anything else."""
    if not (path / "config.yaml").is_file():
        return {}
    return {name: path / name / "model" for name in STAGES if (path / name / "model" / "model.json").is_file()}


def evaluate_saved(
    target: str,
    data: DataRequest | None,
    config: EvaluateConfig,
    teacher: str | None = None,
    output_dir: Path | None = None,
) -> dict:
    """Evaluate the model(s) at ``target``, compared with ``teacher`` (or the run's own teacher), print the
    summary table, and write report.json (and report.html) into ``output_dir`` when given."""
    started = time.perf_counter()
    if output_dir is not None:
        check_writable_dir(output_dir)
        for name in ("report.json", "report.html") if config.html else ("report.json",):
            check_writable_file(output_dir / name)
    path = Path(target.removeprefix("run:")).expanduser()
    stages = run_stages(path)
    if stages:
        model_dirs = dict(stages)
        name = path.name
    else:
        model_dirs = {"model": resolve_run_path(f"run:{path}")}
        name = model_dirs["model"].parent.name if model_dirs["model"].name == "model" else model_dirs["model"].name
    if teacher is not None:
        model_dirs = {"teacher": resolve_run_path(f"run:{teacher.removeprefix('run:')}")} | {
            k: v for k, v in model_dirs.items() if k != "teacher"
        }

    if data is not None:
        bundle = load_data(data.source, data.options, test_fraction=data.test_fraction, seed=data.seed)
        seed: int | None = data.seed
    elif stages:
        recipe = load_recipe(path / "config.yaml")
        bundle = load_data(
            recipe.data.source,
            recipe.data.options,
            val_fraction=recipe.data.val_fraction,
            test_fraction=recipe.data.test_fraction,
            standardize=recipe.data.standardize,
            seed=recipe.seed,
        )
        seed = recipe.seed
    else:
        raise ConfigError(f"{target} is a single model; name the data to evaluate it on with --data")

    loaded = {key: load_run_model(f"run:{d}", bundle.input_shape, bundle.class_names) for key, d in model_dirs.items()}
    if data is not None:
        bundle = _prepare_like_training(bundle, [m.card.preprocess for m in loaded.values()], data.source)
    titles = {"teacher": "teacher", "student_baseline": "student alone", "student": "student"}
    if "student" in loaded and loaded["student"].card.metrics.get("teacher_mode") is not None:
        titles["student"] = "student distilled"
    report = assemble_report(
        {key: (m.module, m.card, model_dirs[key]) for key, m in loaded.items()},
        bundle,
        config,
        name=name,
        seed=seed,
        seconds=0.0,
        titles=titles,
        history=read_history(path / "metrics.jsonl") if stages else {},
    )
    report["wall_seconds"] = time.perf_counter() - started
    if output_dir is not None:
        write_report(output_dir / "report.json", report)
        if config.html:
            write_html(output_dir / "report.html", report)
    print_summary(report)
    return report


def _prepare_like_training(bundle: DataBundle, preprocessing: list[dict], source: str) -> DataBundle:
    """Apply the standardisation the models were trained with; refuse text features from another vocabulary."""
    standardize = [p["standardize"] for p in preprocessing if "standardize" in p]
    if any(s != standardize[0] for s in standardize):
        raise DataError("the models were trained on differently standardised inputs; evaluate them one at a time")
    for p in preprocessing:
        if "tfidf" in p and p["tfidf"] != bundle.preprocess.get("tfidf"):
            raise DataError(
                f"{source}: its TF-IDF vocabulary differs from the one the model was trained with; "
                "evaluate on the run's own data (omit --data)"
            )
    if not standardize:
        return bundle
    shape = bundle.test.x.shape[1:]  # a card may store the statistics flat or shaped like one input
    mean = torch.tensor(standardize[0]["mean"], dtype=torch.float32).reshape(shape)
    std = torch.tensor(standardize[0]["std"], dtype=torch.float32).reshape(shape)
    test = ArrayDataset((bundle.test.x - mean) / std, bundle.test.y)
    return dataclasses.replace(bundle, test=test)
