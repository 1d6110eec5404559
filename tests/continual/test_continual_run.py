"""Continual recipes end to end: every strategy through a Split-digits stream, the report's block and
page, the cards, evaluate on the run, and resume in the middle of an experience."""

import json

import pytest
import safetensors.torch
from tests.interrupt import StepCounter, Stop

from protege.config import Recipe
from protege.continual.plan import STATE_FILE
from protege.models.store import read_card
from protege.pipeline import run_recipe as run
from protege.report.standalone import evaluate_saved

TRAIN = {"epochs": 3, "batch_size": 32, "lr": 0.002, "schedule": "constant", "weight_decay": 0.0, "restore_best": False}


def _recipe(strategies, scenario="class_incremental", experiences=3, **train):
    return Recipe.model_validate(
        {
            "name": "cl",
            "data": {"source": "digits", "standardize": True},
            "continual": {"scenario": scenario, "experiences": experiences, "strategies": strategies},
            "student": {"model": {"source": "mlp", "hidden": 64}, "train": {**TRAIN, **train}},
            "evaluate": {"latency": False},
        }
    )


@pytest.fixture(scope="module")
def every_strategy(tmp_path_factory):
    out = tmp_path_factory.mktemp("cl") / "run"
    strategies = ["naive", "joint", "replay", "ewc", "mas", "lwf", "icarl", {"name": "der", "buffer_size": 100}]
    return out, run(_recipe(strategies), output_dir=out)


def test_every_strategy_fills_its_accuracy_matrix(every_strategy):
    out, result = every_strategy
    block = json.loads((out / "report.json").read_text())["continual"]
    assert block["scenario"] == "class_incremental"
    assert [e["classes"] for e in block["experiences"]] == [["0", "1", "2", "3"], ["4", "5", "6"], ["7", "8", "9"]]
    for name, entry in block["strategies"].items():
        matrix = entry["accuracy_matrix"]
        assert len(matrix) == 3 and all(len(row) == 3 for row in matrix), name
        assert all(matrix[i][j] == 0.0 for i in range(3) for j in range(i + 1, 3)), name  # unseen classes
        assert entry["average_accuracy"] == pytest.approx(sum(matrix[-1]) / 3)
        assert len(entry["per_experience"]) == 3 and entry["per_experience"][0]["train_seconds"] > 0
    strategies = block["strategies"]
    assert strategies["naive"]["forgetting"] > 0.5  # a class-incremental stream makes plain training forget
    for remembering in ("replay", "icarl", "der", "joint"):
        assert strategies[remembering]["average_accuracy"] > strategies["naive"]["average_accuracy"] + 0.3
    assert strategies["replay"]["per_experience"][-1]["state_bytes"] > 0
    assert set(result.report["models"]) == set(strategies)  # final models are evaluated like any model


def test_the_head_grows_and_the_card_knows_its_classes(every_strategy):
    out, _ = every_strategy
    first, last = read_card(out / "naive" / "exp1" / "model"), read_card(out / "naive" / "exp3" / "model")
    assert first.class_names == ["0", "1", "2", "3"] and last.class_names == [str(i) for i in range(10)]
    assert last.metrics["continual"]["experiences"][1] == ["4", "5", "6"]
    state = safetensors.torch.load_file(out / "replay" / "exp2" / STATE_FILE)
    assert len(state["buffer.y"]) == 200 and set(state["buffer.y"].tolist()) == set(range(7))


def test_the_page_draws_the_matrices(every_strategy):
    out, _ = every_strategy
    page = (out / "report.html").read_text()
    assert "Continual learning" in page and "average accuracy" in page and page.count("<figure>") >= 3


def test_evaluate_scores_each_strategys_last_model(every_strategy, capsys):
    out, _ = every_strategy
    from protege.config import EvaluateConfig

    report = evaluate_saved(str(out), None, EvaluateConfig(latency=False, html=False))
    assert set(report["models"]) == {"naive", "joint", "replay", "ewc", "mas", "lwf", "icarl", "der"}
    assert report["models"]["joint"]["accuracy"] > 0.8


def test_task_and_domain_streams(tmp_path):
    task = run(_recipe(["naive", "lwf"], "task_incremental"), output_dir=tmp_path / "task").report["continual"]
    # within a task's own classes, even naive fine-tuning keeps most of what it learned
    assert task["strategies"]["naive"]["average_accuracy"] > 0.8
    domain = run(_recipe(["naive", "replay"], "domain_incremental"), output_dir=tmp_path / "domain")
    block = domain.report["continual"]
    assert all(len(e["classes"]) == 10 for e in block["experiences"])
    assert block["strategies"]["replay"]["average_accuracy"] > block["strategies"]["naive"]["average_accuracy"]


def test_resume_in_the_middle_of_an_experience_gives_the_same_stream(tmp_path, monkeypatch):
    recipe = _recipe(["ewc", {"name": "der", "buffer_size": 60}], checkpoint_every=4)
    calls = StepCounter(monkeypatch)
    whole = run(recipe, output_dir=tmp_path / "whole").report["continual"]
    whole_steps = calls.n
    calls.reset(70)  # in ewc's second experience, mid-epoch
    with pytest.raises(Stop):
        run(recipe, output_dir=tmp_path / "cut")
    calls.reset()
    resumed = run(recipe, output_dir=tmp_path / "cut", resume=True).report["continual"]
    # the finished experience was loaded and the cut one continued from its last checkpoint (every 4 steps)
    assert whole_steps - 69 <= calls.n <= whole_steps - 69 + 4
    for name in ("ewc", "der"):
        assert resumed["strategies"][name]["accuracy_matrix"] == whole["strategies"][name]["accuracy_matrix"], name
