"""Recipe validation: every mistake is one line that names the field and, where it can, the fix."""

import pytest
import yaml

from protege.errors import ConfigError
from protege.recipe_reader import load_recipe, recipe_from_dict

BASE = {
    "name": "t",
    "data": {"source": "digits"},
    "teacher": {"model": {"source": "cnn2d", "width": 8}, "train": {"epochs": 1}},
    "student": {"model": {"source": "mlp", "hidden": 8}, "train": {"epochs": 1}, "objective": {"name": "kd"}},
}


def _with(path: str, value):
    import copy

    raw = copy.deepcopy(BASE)
    node = raw
    *parents, last = path.split(".")
    for part in parents:
        node = node[part]
    node[last] = value
    return raw


def _error(raw) -> str:
    with pytest.raises(ConfigError) as info:
        recipe_from_dict(raw, origin="r.yaml")
    message = str(info.value)
    assert "\n" not in message
    return message


def test_valid_recipe_round_trips():
    recipe = recipe_from_dict(BASE)
    assert recipe.student.objectives[0].options == {}
    assert recipe.teacher.model.options == {"width": 8}


def test_unknown_top_level_field_is_named_with_a_suggestion():
    raw = dict(BASE, studnet={})
    assert _error(raw) == 'r.yaml: studnet: unknown field (did you mean "student"?)'


def test_misspelt_nested_field_gets_a_suggestion():
    message = _error(_with("student.train", {"epochs": 1, "lrr": 0.1}))
    assert message == 'r.yaml: student.train.lrr: unknown field (did you mean "lr"?)'


def test_unknown_field_with_nothing_close_lists_valid_ones():
    message = _error(_with("evaluate", {"zzz": 1}))
    assert "evaluate.zzz: unknown field; valid: latency" in message


def test_wrong_type_names_field_and_value():
    message = _error(_with("student.train", {"epochs": "many"}))
    assert message.startswith("r.yaml: student.train.epochs:") and "'many'" in message


def test_out_of_range_value():
    assert "student.train.lr" in _error(_with("student.train", {"lr": -1}))


def test_missing_data_block():
    raw = {k: v for k, v in BASE.items() if k != "data"}
    assert _error(raw) == "r.yaml: data: Field required"


def test_unknown_objective_suggests_the_closest():
    assert 'did you mean "kd"' in _error(_with("student.objective", {"name": "kdd"}))


def test_objective_option_typo():
    message = _error(_with("student.objective", {"name": "kd", "temprature": 2}))
    assert "student.objective: objective 'kd' has no option 'temprature' (did you mean \"temperature\"?)" in message


def test_kd_without_a_teacher_stage():
    raw = {k: v for k, v in BASE.items() if k != "teacher"}
    assert "needs a teacher" in _error(raw)


def test_unknown_model_source_and_option():
    assert 'did you mean "mlp"' in _error(_with("student.model", {"source": "mpl"}))
    assert 'did you mean "hidden"' in _error(_with("student.model", {"source": "mlp", "hiden": 3}))


def test_unknown_data_source():
    assert "r.yaml: data.source: unknown data source 'digit' (did you mean \"digits\"?)" in _error(
        _with("data", {"source": "digit"})
    )


def test_untrained_builtin_teacher_is_refused():
    assert "teacher.train" in _error(_with("teacher", {"model": {"source": "mlp"}}))


def test_transfer_set_without_distillation_is_refused():
    raw = _with("student.objective", {"name": "ce"})
    raw["transfer"] = {"source": "mnist1d"}
    assert "transfer" in _error(raw)


def test_several_objectives_with_weights():
    recipe = recipe_from_dict(_with("student.objective", [{"name": "ce", "weight": 0.5}, {"name": "kd"}]))
    assert [o.name for o in recipe.student.objectives] == ["ce", "kd"]


def test_load_recipe_with_overrides(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(BASE))
    recipe = load_recipe(path, ["student.train.epochs=7", "student.objective.temperature=2.5"])
    assert recipe.student.train.epochs == 7
    assert recipe.student.objectives[0].options == {"temperature": 2.5}


def test_missing_and_malformed_recipe_files(tmp_path):
    with pytest.raises(ConfigError, match="recipe not found"):
        load_recipe(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_recipe(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just a string\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_recipe(scalar)


def test_bundled_recipes_are_valid():
    from protege.cli import bundled_recipe

    for name in ("demo", "mnist1d", "text_minilm", "multitask", "images"):
        load_recipe(bundled_recipe(name))


def test_baseline_with_its_own_training_block():
    recipe = recipe_from_dict(_with("student.baseline", {"epochs": 3, "lr": 0.1}))
    baseline = recipe.student.baseline_stage()
    assert baseline.train.epochs == 3 and baseline.objectives == []
    assert recipe_from_dict(_with("student.baseline", True)).student.baseline_stage().train.epochs == 1
    assert recipe_from_dict(BASE).student.baseline_stage() is None


def test_typo_inside_a_field_of_several_types_is_named():
    message = _error(_with("student.baseline", {"epochs": 3, "lrr": 0.1}))
    assert message == 'r.yaml: student.baseline.lrr: unknown field (did you mean "lr"?)'
    message = _error(_with("student.objective", [{"name": "kd"}, {"name": "ce", "wieght": 2}]))
    assert "student.objective[1]" in message and 'did you mean "weight"' in message


def test_objective_option_of_the_wrong_type():
    message = _error(_with("student.objective", {"name": "kd", "temperature": None}))
    assert message.startswith("r.yaml: student.objective: objective 'kd': temperature:")
    assert "valid number" in _error(_with("student.objective", {"name": "dkd", "beta": "eight"}))


@pytest.mark.parametrize("name", ["../escape", "/etc", "a/b", ".hidden", ""])
def test_a_recipe_name_cannot_point_outside_the_runs_folder(name):
    with pytest.raises(ConfigError, match="name: String should match pattern"):
        recipe_from_dict(
            {"name": name, "data": {"source": "digits"}, "student": {"model": {"source": "mlp"}, "train": {}}}
        )
