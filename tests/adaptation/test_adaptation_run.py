"""An adaptation recipe end to end on tiny settings: every method's target and source scores in the report,
the printed table and the page; each card names its method and the saved models hold no domain head;
target labels never reach training; the dry run; the bundled recipe; resume in the middle of a stage."""

import json

import numpy as np
import pytest
import yaml
from safetensors.torch import load_file
from tests.interrupt import StepCounter, Stop

from protege.cli import main
from protege.models import read_card
from protege.pipeline import run_recipe
from protege.recipe_reader import load_recipe

METHODS = ["source_only", "adabn", "dann", "cdan", "mdd"]
QUICK = {"batch_size": 128, "lr": 0.01}


def _recipe(tmp_path, methods=METHODS, epochs=2, target=None, **train) -> dict:
    return {
        "name": "adapt",
        "seed": 0,
        "data": {"source": "digits"},
        "adaptation": {"target": target or {"shift": "rotate", "amount": 30}, "methods": methods},
        "student": {
            "model": {"source": "cnn2d", "width": 4, "depth": 1},
            "train": {**QUICK, "epochs": epochs, **train},
        },
        "evaluate": {"latency": False},
    }


def _write(tmp_path, body: dict, name: str = "recipe.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(body))
    return path


@pytest.fixture(scope="module")
def adapted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("adapt")
    out = tmp / "run"
    result = run_recipe(load_recipe(_write(tmp, _recipe(tmp))), out)
    return out, result


def test_every_method_is_scored_on_the_target_and_the_source(adapted):
    out, _ = adapted
    report = json.loads((out / "report.json").read_text())
    block = report["adaptation"]
    assert list(block["methods"]) == METHODS and list(report["models"]) == METHODS
    for name, entry in block["methods"].items():
        assert 0 <= entry["target"]["accuracy"] <= 1 and 0 <= entry["source"]["accuracy"] <= 1
        assert entry["source"]["accuracy"] == pytest.approx(report["models"][name]["accuracy"])
        assert -2 <= entry["a_distance"] <= 2 and "target_accuracy_gain" in entry
    assert block["methods"]["source_only"]["target_accuracy_gain"] == 0
    assert block["select"] == "source" and "no target label is read" in block["selection"]
    assert block["sizes"]["target_train"] + block["sizes"]["source_train"] == report["data"]["sizes"]["train"]
    page = (out / "report.html").read_text()
    assert "Domain adaptation" in page and "A-distance" in page


def test_adabn_is_the_source_only_model_with_target_statistics(adapted):
    out, _ = adapted
    before, after = (
        load_file(out / "source_only" / "model" / "model.safetensors"),
        load_file(out / "adabn" / "model" / "model.safetensors"),
    )
    changed = {k for k in before if not (before[k] == after[k]).all()}
    assert changed and all("running" in k or "num_batches" in k for k in changed)


def test_each_card_names_its_method_and_no_domain_head_is_exported(adapted):
    out, result = adapted
    for name in METHODS:
        note = read_card(out / name / "model").metrics["adaptation"]
        assert note["method"] == name and "rotated by 30°" in note["target"]
        keys = set(load_file(out / name / "model" / "model.safetensors"))
        assert keys == set(result.stages[name].model.state_dict())
        assert not any("discriminator" in k or "auxiliary" in k for k in keys)
    assert read_card(out / "dann" / "model").metrics["adaptation"]["gamma"] == 10.0


def test_the_summary_table_is_printed(adapted, monkeypatch):
    from protege.console import out_console
    from protege.report.summary import print_summary

    _, result = adapted
    monkeypatch.setenv("PROTEGE_QUIET", "0")
    monkeypatch.setattr(out_console, "width", 250)
    with out_console.capture() as captured:
        print_summary(result.report)
    text = captured.get()
    assert "domain adaptation" in text and "gain over source-only" in text and "cdan" in text


def _target_npz(path, labels: np.ndarray) -> str:
    rng = np.random.default_rng(0)
    x = rng.random((200, 1, 8, 8)).astype(np.float32)
    np.savez(path, x=x, y=labels, x_test=x[:50], y_test=np.array([str(i % 10) for i in range(50)]))
    return f"npz:{path}"


def test_target_labels_are_never_used_in_training(tmp_path):
    """The same target inputs with their training labels shuffled train the same weights, step for step."""
    labels = np.array([str(i % 10) for i in range(200)])
    shuffled = np.random.default_rng(1).permutation(labels)
    runs = []
    for name, y in (("given", labels), ("shuffled", shuffled)):
        target = {"source": _target_npz(tmp_path / f"{name}.npz", y), "val_fraction": 0}
        body = _recipe(tmp_path, ["dann", "cdan", "mdd"], epochs=1, target=target)
        run_recipe(load_recipe(_write(tmp_path, body, f"{name}.yaml")), tmp_path / name)
        runs.append(tmp_path / name)
    for method in ("dann", "cdan", "mdd"):
        first, second = (load_file(run / method / "model" / "model.safetensors") for run in runs)
        assert all((first[k] == second[k]).all() for k in first), method
    records = [[{k: v for k, v in json.loads(line).items() if k != "seconds"}
                for line in (run / "metrics.jsonl").read_text().splitlines()] for run in runs]  # fmt: skip
    assert records[0] == records[1]


def test_the_dry_run_lists_the_methods(tmp_path, capsys, monkeypatch):
    from protege.console import out_console

    monkeypatch.setattr(out_console, "width", 300)
    assert main(["run", str(_write(tmp_path, _recipe(tmp_path))), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "rotated by 30°" in text and "cdan (trade_off=1, gamma=10" in text and "BatchNorm statistics" in text


def test_the_bundled_recipe_runs(tmp_path):
    short = ["--set", "student.train.epochs=1", "--set", "evaluate.html=false"]
    assert main(["run", "domain_adaptation", "-o", str(tmp_path / "run"), *short]) == 0
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert list(report["adaptation"]["methods"]) == METHODS


def test_resume_in_the_middle_of_a_stage_gives_the_same_numbers(tmp_path, monkeypatch):
    body = _recipe(tmp_path, ["source_only", "dann", "cdan"], epochs=3, checkpoint_every=2)
    recipe = load_recipe(_write(tmp_path, body))
    calls = StepCounter(monkeypatch)
    whole = run_recipe(recipe, tmp_path / "whole").report
    steps = calls.n
    per_stage = steps // 3
    stop = per_stage + per_stage // 2 + 1  # in dann's second epoch, between checkpoints
    calls.reset(stop)
    with pytest.raises(Stop):
        run_recipe(recipe, tmp_path / "cut")
    calls.reset()
    resumed = run_recipe(recipe, tmp_path / "cut", resume=True).report
    assert steps - stop < calls.n <= steps - stop + 2
    timeless = [{name: {k: v for k, v in entry.items() if k != "seconds"} for name, entry in report["adaptation"]
                 ["methods"].items()} for report in (whole, resumed)]  # fmt: skip
    assert timeless[0] == timeless[1]
    for name, entry in whole["models"].items():
        assert resumed["models"][name]["accuracy"] == entry["accuracy"], name
        assert resumed["models"][name]["nll"] == entry["nll"], name
