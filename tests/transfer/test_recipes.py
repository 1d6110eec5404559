"""Strategies in recipes: a fine-tune-only recipe (a pretrained student, no teacher), the head saved
alone next to the model, one-line errors, and the dry run's parameter groups."""

import pytest

from protege.dry_run import describe
from protege.errors import ConfigError
from protege.evaluate import predict_logits, quality
from protege.models import build_model
from protege.pipeline import load_recipe_data, run_recipe
from protege.recipe_reader import recipe_from_dict
from protege.transfer import load_trained_part

DATA = {"source": "digits", "test_fraction": 0.3}
PRETRAIN = {
    "name": "pretrain",
    "data": DATA,
    "teacher": {"model": {"source": "cnn2d", "width": 4}, "train": {"epochs": 1, "batch_size": 128, "lr": 0.01}},
    "evaluate": {"latency": False},
}


def _probe_recipe(pretrained, **strategy):
    return {
        "name": "probe",
        "data": DATA,
        "student": {
            "model": {"source": f"run:{pretrained}"},
            "strategy": {"name": "linear_probe", **strategy},
            "objective": {"name": "ce"},
            "train": {"epochs": 2, "batch_size": 128, "lr": 0.05},
        },
        "evaluate": {"latency": False},
    }


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "pretrain"
    run_recipe(recipe_from_dict(PRETRAIN), run_dir)
    return run_dir / "teacher"


def test_fine_tune_only_recipe_saves_the_head_alone_and_it_round_trips(pretrained, tmp_path):
    recipe = recipe_from_dict(_probe_recipe(pretrained))
    result = run_recipe(recipe, tmp_path / "probe")
    model_dir = tmp_path / "probe" / "student" / "model"
    assert set(result.report["models"]) == {"student"}
    assert (model_dir / "head.safetensors").is_file()

    data = load_recipe_data(recipe)
    backbone = build_model(f"run:{pretrained}", {}, data.input_shape, data.class_names).module
    reloaded = load_trained_part(backbone, model_dir / "head.safetensors")
    saved = build_model(f"run:{model_dir}", {}, data.input_shape, data.class_names).module
    ours = quality(predict_logits(reloaded, data.test), data.test.y)
    assert ours == quality(predict_logits(saved, data.test), data.test.y)
    assert ours["accuracy"] == pytest.approx(result.report["models"]["student"]["accuracy"])


@pytest.mark.parametrize(
    ("strategy", "message"),
    [
        (
            {"name": "linear_prob"},
            "student.strategy.name: unknown strategy 'linear_prob' (did you mean \"linear_probe\"?)",
        ),
        ({"name": "finetune", "backbone_lr": 1}, "student.strategy: strategy 'finetune' has no option 'backbone_lr'"),
        ({"name": "finetune", "batchnorm": "off"}, "student.strategy.batchnorm: Input should be 'train'"),
    ],
)
def test_strategy_mistakes_are_one_line_errors(strategy, message):
    raw = _probe_recipe("somewhere")
    raw["student"]["strategy"] = strategy
    with pytest.raises(ConfigError) as error:
        recipe_from_dict(raw)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_strategy_needs_a_train_block():
    raw = _probe_recipe("somewhere")
    del raw["student"]["train"]
    with pytest.raises(ConfigError, match=r"student\.strategy: a strategy needs a 'train' block"):
        recipe_from_dict(raw)


def test_dry_run_prints_trainable_parameters_per_group(capsys):
    raw = {
        "data": DATA,
        "student": {
            "model": {"source": "resnet", "width": 4, "blocks": [1, 1]},
            "strategy": {"name": "gradual_unfreeze", "every": 2},
            "train": {"epochs": 4, "lr": 0.01},
        },
    }
    describe(recipe_from_dict(raw))
    out = capsys.readouterr().out
    assert "student: gradual_unfreeze" in out and "head: head; blocks: guessed from module paths" in out
    assert "features.4" in out and "from epoch 3" in out and "frozen" not in out.split("stages")[0]
