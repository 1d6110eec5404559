"""``protege evaluate``: the report of models that were trained earlier (a run directory, or one model
directory with an optional teacher), on any data source with the same classes and input shape."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch

from protege.checks import one_view_needed
from protege.config import EvaluateConfig
from protege.data.build import source_location, split_examples
from protege.data.dataset import ArrayDataset, DataBundle
from protege.data.streamed import refuse_streamed
from protege.data.views import Views
from protege.errors import ConfigError, DataError
from protege.files import check_writable_dir, check_writable_file
from protege.models import load_run_model, resolve_run_path
from protege.models.compatibility import check_features, check_split, check_task, check_task_free
from protege.models.hf import saved_text_encoder
from protege.models.store import ModelCard, read_card
from protege.models.view_encoders import saved_model_encoder, shared_model_input
from protege.pipeline import recipe_examples, split_recipe_data
from protege.recipe_reader import load_recipe
from protege.report.html import write_html
from protege.report.summary import assemble_report, model_titles, print_summary, read_history, write_report
from protege.rundir import is_run_directory, read_marker, run_containing

STAGES = ("teacher", "student_baseline", "student")
COLUMN_SOURCES = ("csv", "jsonl", "hf_dataset")
"""Sources that read named columns: evaluated on other data, they read the columns the models were trained on."""


@dataclasses.dataclass
class DataRequest:
    """A data source named on the command line and how to split it (the test split is what is scored)."""

    source: str
    options: dict = dataclasses.field(default_factory=dict)
    test_fraction: float | None = None
    """None: the fraction the models' training used on this source, else 0.2."""
    seed: int | None = None
    """None: the seed the models' training split this source with, else 0."""
    task: str = "classification"
    """What the targets are: the task the models were trained for (their cards say)."""


def run_stages(path: Path) -> dict[str, Path]:
    """The saved stage models of a run directory, in the order the run made them (the marker's entries;
    a run made before the marker: teacher, student_baseline, student); empty for anything else."""
    if not (path / "config.yaml").is_file():
        return {}
    names = [e for e in read_marker(path)["entries"]] if is_run_directory(path) else list(STAGES)
    found = {}
    for name in names:
        model = path / name / "model"
        if not (model / "model.json").is_file():  # a continual strategy: its last experience's model
            model = _last_experience(path / name)
        if model is not None:
            found[name] = model
    return found


def _last_experience(folder: Path) -> Path | None:
    """``<strategy>/exp<k>/model`` of a continual run with the largest finished k, or None."""
    finished = [
        (int(child.name[3:]), child / "model")
        for child in (folder.iterdir() if folder.is_dir() else [])
        if child.name.startswith("exp") and child.name[3:].isdigit() and (child / "model" / "model.json").is_file()
    ]
    return max(finished)[1] if finished else None


def card_role(name: str, card: ModelCard) -> str:
    """A saved model's role: recorded in its card; for cards older than roles, read from its stage name."""
    role = card.metrics.get("role")
    if role:
        return role
    return {"teacher": "teacher", "student_baseline": "baseline"}.get(name, "student")


def evaluate_saved(
    target: str,
    data: DataRequest | None,
    config: EvaluateConfig,
    teacher: str | None = None,
    output_dir: Path | None = None,
    trust_remote_code: bool = False,
) -> dict:
    """Evaluate the model(s) at ``target``, compared with ``teacher`` (or the run's own teacher), print the
    summary table, and write report.json (and report.html) into ``output_dir`` when given. Texts go through
    the models' saved tokenizer; ``trust_remote_code`` is the user's permission for their code."""
    started = time.perf_counter()
    if output_dir is not None:
        _check_output(output_dir, config)
    path = Path(target.removeprefix("run:")).expanduser()
    model_dirs, name, is_run = _models_at(path, teacher)
    views, seed = _data_for(target, path, data, model_dirs, is_run, trust_remote_code)
    bundle = views[list(model_dirs)[-1]]
    names = None if bundle.task == "multitask" else bundle.class_names  # each head checks its own outputs
    loaded = {
        key: load_run_model(f"run:{d}", views[key].input_shape, names, trust_remote_code)
        for key, d in model_dirs.items()
    }
    for key, m in loaded.items():
        check_task_free(m.card, f"model {key} ({model_dirs[key]})")
    if data is not None:
        views = _prepared_views(views, {key: m.card.preprocess for key, m in loaded.items()}, data.source)
        bundle = views[list(model_dirs)[-1]]
    roles = {key: card_role(key, m.card) for key, m in loaded.items()}
    if teacher is not None:  # the model named by --teacher is the reference, whatever it was in its own run
        roles["teacher"] = "teacher"
    report = assemble_report(
        {key: (m.module, m.card, model_dirs[key]) for key, m in loaded.items()},
        bundle,
        config,
        name=name,
        seed=seed,
        seconds=0.0,
        titles=model_titles(roles, {key: m.card for key, m in loaded.items()}),
        history=read_history(path / "metrics.jsonl") if is_run else {},
        roles=roles,
        views=views,
    )
    if is_run and data is None:
        _add_robust_accuracy(report, path, {key: m.module for key, m in loaded.items()}, bundle)
    if bundle.task == "multitask":
        from protege.multitask.run import add_multitask_block

        add_multitask_block(
            report, load_recipe(path / "config.yaml"), {k: (m.module, m.card) for k, m in loaded.items()}, bundle
        )
    report["wall_seconds"] = time.perf_counter() - started
    if output_dir is not None:
        write_report(output_dir / "report.json", report)
        if config.html:
            write_html(output_dir / "report.html", report)
    print_summary(report)
    return report


def _add_robust_accuracy(report: dict, path: Path, modules: dict, bundle: DataBundle) -> None:
    """A robust run's models, on its own test split, are scored under its evaluation attack as the run did."""
    recipe = load_recipe(path / "config.yaml")
    if recipe.robust is not None:
        from protege.robust.evaluate import add_robust_accuracy

        add_robust_accuracy(report, modules, bundle, recipe)


def _check_output(output_dir: Path, config: EvaluateConfig) -> None:
    """An output folder that can take the report, and is not in a run directory (evaluating never changes a run)."""
    inside = run_containing(output_dir)
    if inside is not None:
        raise ConfigError(
            f"{output_dir} is in the run directory {inside}; an evaluation never changes a run: "
            "write it elsewhere (-o reports/<name>)"
        )
    check_writable_dir(output_dir)
    for name in ("report.json", "report.html") if config.html else ("report.json",):
        check_writable_file(output_dir / name)


def _models_at(path: Path, teacher: str | None) -> tuple[dict[str, Path], str, bool]:
    """The model directories to score (every stage of a run, or one model, and the ``--teacher``), the
    report's name, and whether ``path`` is a run directory."""
    stages = run_stages(path)
    if stages:
        model_dirs, name = dict(stages), path.name
    else:
        model_dirs = {"model": resolve_run_path(f"run:{path}")}
        name = model_dirs["model"].parent.name if model_dirs["model"].name == "model" else model_dirs["model"].name
    if teacher is not None:
        named = resolve_run_path(f"run:{teacher.removeprefix('run:')}")
        model_dirs = {"teacher": named} | {k: v for k, v in model_dirs.items() if k != "teacher"}
    return model_dirs, name, bool(stages)


def _data_for(
    target: str, path: Path, data: DataRequest | None, model_dirs: dict[str, Path], is_run: bool, trust: bool
) -> tuple[dict[str, DataBundle], int | None]:
    """The data to score each model on, through its own saved encoder (protege.data.views): ``data`` as the
    models were trained (their columns, split, task), or a run's own test split; the split's seed."""
    encoders = {key: saved_model_encoder(directory, trust) for key, directory in model_dirs.items()}
    views: Views | None = None
    if data is not None:
        cards = {key: read_card(directory) for key, directory in model_dirs.items()}
        data = like_training(data, cards)
        reads_text = any(encoder is not None for encoder in encoders.values())
        options = _with_text_column(data, model_dirs) if reads_text else data.options
        views = Views(
            split_examples(data.source, options, test_fraction=data.test_fraction, seed=data.seed, task=data.task),
            lambda source, _: encoders[source],
        )
        bundles = {key: views.for_model(key, {}) for key in model_dirs}
        for key, card in cards.items():
            check_task(card, data.task, key)
            check_features(card.preprocess.get("features"), bundles[key].preprocess.get("features"), key)
            check_split(card.data, bundles[key].split, f"{key} ({model_dirs[key]})")
        return bundles, data.seed
    if not is_run:
        raise ConfigError(f"{target} is a single model; name the data to evaluate it on with --data")
    recipe = load_recipe(path / "config.yaml")
    if one_view_needed(recipe) is not None:
        saved = [(name, f"run:{directory}", {}) for name, directory in model_dirs.items()]
        bundle = split_recipe_data(recipe, shared_model_input(saved) or saved_text_encoder(model_dirs, trust))
        return {key: bundle for key in model_dirs}, recipe.seed
    views = Views(recipe_examples(recipe), lambda source, _: encoders[source])
    return {key: views.for_model(key, {}) for key in model_dirs}, recipe.seed


def _prepared_views(views: dict[str, DataBundle], preprocessing: dict[str, dict], source: str) -> dict[str, DataBundle]:
    """:func:`_prepare_like_training` once per view, with the preprocessing of the models that read it."""
    prepared: dict[int, DataBundle] = {}
    for view in {id(v): v for v in views.values()}.values():
        readers = [preprocessing[key] for key, v in views.items() if v is view]
        prepared[id(view)] = _prepare_like_training(view, readers, source)
    return {key: prepared[id(view)] for key, view in views.items()}


def like_training(request: DataRequest, cards: dict[str, ModelCard]) -> DataRequest:
    """The data request with what the models were trained with filled in: on the models' own source, the
    seed and test fraction of their split (so its test split holds none of their training examples), and
    for a CSV or JSON Lines file, the feature columns the models read, picked by name."""
    trained = [c.data for c in cards.values() if c.data and _same_source(c.data, request)]
    drawn = {(d["seed"], d["test_fraction"]) for d in trained if d.get("test") == "drawn"}
    if len(drawn) > 1:
        raise DataError(
            f"{request.source}: the models were trained on different splits of it (seeds and test fractions "
            f"{sorted(drawn)}); evaluate them one at a time"
        )
    seed, fraction = next(iter(drawn)) if drawn else (0, 0.2)
    tasks = {c.data.get("task", "classification") for c in cards.values()}
    if len(tasks) > 1:
        raise DataError(
            f"the models were trained for different tasks ({', '.join(sorted(tasks))}); evaluate them apart"
        )
    request = dataclasses.replace(
        request,
        seed=seed if request.seed is None else request.seed,
        test_fraction=fraction if request.test_fraction is None else request.test_fraction,
        task=next(iter(tasks)),
    )
    features = {tuple(c.preprocess["features"]) for c in cards.values() if "features" in c.preprocess}
    kind = request.source.partition(":")[0]
    if kind in COLUMN_SOURCES and len(features) == 1 and "feature_columns" not in request.options:
        request = dataclasses.replace(request, options={**request.options, "feature_columns": list(*features)})
    return request


def _same_source(trained: dict, request: DataRequest) -> bool:
    location = source_location(request.source)
    mine = (location or request.source, request.options)
    return (trained.get("location") or trained.get("source"), trained.get("options")) == mine


def _with_text_column(data: DataRequest, model_dirs: dict[str, Path]) -> dict:
    """A table's options (csv, jsonl, hf_dataset), reading text from the column the models were trained on unless named
    (the first model that read text names it: the others may read numbers, or another view of the texts)."""
    columns = (read_card(directory).preprocess.get("text_column") for directory in model_dirs.values())
    column = next((c for c in columns if c is not None), None)
    if column is None or "text_column" in data.options or data.source.partition(":")[0] not in COLUMN_SOURCES:
        return data.options
    return {"text_column": column, **data.options}


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
    refuse_streamed(bundle.test, "evaluating a model trained on standardised inputs")
    shape = bundle.test.x.shape[1:]  # a card may store the statistics flat or shaped like one input
    mean = torch.tensor(standardize[0]["mean"], dtype=torch.float32).reshape(shape)
    std = torch.tensor(standardize[0]["std"], dtype=torch.float32).reshape(shape)
    test = ArrayDataset((bundle.test.x - mean) / std, bundle.test.y)
    return dataclasses.replace(bundle, test=test)
