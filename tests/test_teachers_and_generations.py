"""Several teachers (averaged soft targets) and born-again generations, through recipes."""

import copy
import json

import pytest

from protege.errors import ConfigError
from protege.pipeline import run_recipe
from protege.recipe_reader import recipe_from_dict

BASE = {
    "name": "multi",
    "data": {"source": "digits", "test_fraction": 0.3},
    "student": {
        "model": {"source": "mlp", "hidden": 8},
        "objective": {"name": "kd", "temperature": 3, "alpha": 0.8},
        "train": {"epochs": 1, "batch_size": 256, "lr": 0.01},
    },
    "evaluate": {"latency": False},
}
TRAIN = {"epochs": 1, "batch_size": 256, "lr": 0.01}


def _recipe(**changes):
    raw = copy.deepcopy(BASE)
    for key, value in changes.items():
        target, _, field = key.rpartition(".")
        (raw[target] if target else raw)[field] = value
    return recipe_from_dict(raw)


def test_two_teachers_of_different_architectures_are_averaged(tmp_path):
    teachers = [
        {"model": {"source": "cnn2d", "width": 4}, "train": TRAIN},
        {"model": {"source": "mlp", "hidden": 16}, "train": TRAIN},
    ]
    recipe = _recipe(teacher=teachers, **{"student.teacher_weights": [2.0, 1.0]})
    result = run_recipe(recipe, tmp_path / "run")
    assert {"teacher_1", "teacher_2", "teacher", "student"} <= set(result.stages)
    ensemble = result.stages["teacher"]
    assert ensemble.card.architecture == "ensemble"
    assert ensemble.card.options == {"members": ["teacher_1", "teacher_2"], "weights": [2.0, 1.0], "temperature": 3.0}
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert "agreement" in report["models"]["student"]
    assert report["models"]["teacher"]["parameters"] == sum(
        report["models"][name]["parameters"] for name in ("teacher_1", "teacher_2")
    )
    assert result.stages["student"].card.metrics["teacher_mode"] == "cached (memory)"


def test_born_again_generations_each_teach_the_next(tmp_path):
    recipe = _recipe(teacher={"model": {"source": "mlp", "hidden": 8}, "train": TRAIN}, **{"student.generations": 3})
    result = run_recipe(recipe, tmp_path / "run")
    assert [name for name in result.stages if name.startswith("student")] == ["student_gen1", "student_gen2", "student"]
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in lines] == ["teacher", "student_gen1", "student_gen2", "student"]
    first, second = result.stages["student_gen1"].model, result.stages["student_gen2"].model
    assert any((a != b).any() for a, b in zip(first.parameters(), second.parameters(), strict=True))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"teacher": [{"model": {"source": "run:x"}}]}, "at least two"),
        ({"teacher": {"model": {"source": "run:x"}}, "student.teacher_weights": [1.0, 2.0]}, "2 weights for 1"),
        ({"teacher": {"model": {"source": "run:x"}}, "student.teacher_weights": [-1.0]}, "must all be positive"),
        ({"student.objective": {"name": "ce"}, "student.generations": 2}, "born-again"),
    ],
)
def test_bad_teacher_lists_and_generations_are_refused(changes, message):
    with pytest.raises(ConfigError, match=message):
        _recipe(**changes)


def test_fitnet_hint_epochs_pretrain_on_the_hint_alone_first(tmp_path):
    hint = {"name": "fitnet", "student_layer": "features", "teacher_layer": "features", "hint_epochs": 2}
    recipe = _recipe(
        teacher={"model": {"source": "mlp", "hidden": 16}, "train": TRAIN},
        **{"student.objective": [hint, {"name": "kd", "temperature": 3}]},
    )
    run_recipe(recipe, tmp_path / "run")
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in lines] == ["teacher", "student_hint", "student_hint", "student"]
    assert set(k for k in lines[1] if k.startswith("train_")) >= {"train_hint"}
    assert "train_kd" not in lines[1] and "train_ce" not in lines[1]
    assert "train_kd" in lines[-1]
