"""Each model reads its own view of the same examples (protege.data.views): a tokenizer teacher and a
TF-IDF student, two tokenizers, the teacher cache keyed by example, and views that cannot be the same."""

import json

import pytest
import torch
from tests.conftest import write_tiny_hf_model

from protege.api import distill
from protege.api import export as export_model
from protege.api import predict as predict_inputs
from protege.cli import main
from protege.config import TrainConfig
from protege.data.build import encode_examples, split_examples
from protege.data.dataset import ArrayDataset
from protege.data.views import TEACHER_INPUTS, Views, with_teacher_view
from protege.dry_run import describe
from protege.engine import fit
from protege.errors import DataError, ProtegeError
from protege.models import build_model
from protege.models.hf import model_text_encoder
from protege.objectives import build_objective
from protege.pipeline import load_recipe_views, run_recipe
from protege.recipe_reader import recipe_from_dict

TRAIN = {"epochs": 2, "batch_size": 16, "lr": 0.005}
SHORT = {"max_length": 12}


def _recipe(csv, teacher: dict, student: dict) -> dict:
    return {
        "name": "views",
        "data": {"source": f"csv:{csv}", "options": {"text_column": "text"}},
        "teacher": {"model": teacher, "train": TRAIN},
        "student": {"model": student, "objective": {"name": "kd", "temperature": 2, "alpha": 0.5}, "train": TRAIN},
        "evaluate": {"latency": False},
    }


def _views(csv) -> Views:
    examples = split_examples(f"csv:{csv}", {"text_column": "text"}, seed=0)
    return Views(examples, model_text_encoder)


def test_each_model_reads_the_same_texts_through_its_own_encoder(tiny_hf, sentiment_csv):
    views = _views(sentiment_csv)
    tokens = views.for_model(f"hf:{tiny_hf}", {"max_length": 12})
    tfidf = views.for_model("mlp", {"hidden": 8})
    assert views.for_model("linear", {}) is tfidf and len(views) == 2  # one encoder, one set of tensors
    assert tokens.train.x.dtype == torch.long and tfidf.train.x.is_floating_point()
    assert tokens.sizes() == tfidf.sizes() and torch.equal(tokens.test.y, tfidf.test.y)
    texts = [str(t) for t in views.examples.splits.x]
    torch.testing.assert_close(tfidf.train.x, torch.as_tensor(tfidf.text_encoder.transform(texts)))
    assert torch.equal(tokens.train.x, torch.as_tensor(tokens.text_encoder.transform(texts)))
    # the split belongs to the examples: encoding them again with the default encoder gives the same tensors
    assert torch.equal(encode_examples(views.examples).train.x, tfidf.train.x)


def test_a_batch_carries_the_teachers_view_of_the_same_examples(tiny_hf, sentiment_csv):
    views = _views(sentiment_csv)
    tokens, tfidf = views.for_model(f"hf:{tiny_hf}", SHORT), views.for_model("mlp", {})
    viewed = with_teacher_view(tfidf.train, tokens.train, "teacher")
    batch = viewed.__getitems__([5, 0, 17])
    assert torch.equal(batch["x"], tfidf.train.x[[5, 0, 17]])
    assert torch.equal(batch[TEACHER_INPUTS], tokens.train.x[[5, 0, 17]])
    assert torch.equal(viewed.teacher_view().x, tokens.train.x)
    assert viewed.fingerprint() != tfidf.train.fingerprint()
    assert with_teacher_view(tfidf.train, tfidf.train, "teacher") is tfidf.train


class _Counting(torch.nn.Module):
    """A teacher that records every input row it is given."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model, self.seen = model, []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return self.model(x)


@pytest.mark.parametrize("cache", ["auto", "off"])
def test_the_teacher_reads_its_own_view_once_per_example_when_cached(tiny_hf, sentiment_csv, cache):
    views = _views(sentiment_csv)
    tokens, tfidf = views.for_model(f"hf:{tiny_hf}", SHORT), views.for_model("mlp", {})
    teacher = _Counting(
        build_model(f"hf:{tiny_hf}", {}, tokens.input_shape, tokens.class_names, tokens.preprocess).module
    )
    student = build_model("mlp", {"hidden": 8}, tfidf.input_shape, tfidf.class_names, tfidf.preprocess).module
    train = with_teacher_view(tfidf.train, tokens.train, "teacher")
    objective = build_objective([("kd", {"temperature": 2.0}, 1.0)])
    result = fit(student, train, objective, TrainConfig(epochs=2, batch_size=8), teacher=teacher, teacher_cache=cache)
    seen = torch.cat(teacher.seen[1:])  # the first call is the one-example shape probe (cached) or a batch
    rows = {tuple(row.tolist()) for row in tokens.train.x}
    assert all(tuple(row.tolist()) in rows for row in torch.cat(teacher.seen))  # only ever its own view
    if cache == "auto":
        assert result.teacher_mode.startswith("cached") and len(seen) == len(tokens.train)
    else:
        assert len(torch.cat(teacher.seen)) == 2 * len(tokens.train)


def test_a_tokenizer_teacher_distils_into_a_tfidf_student_from_a_recipe(tiny_hf, sentiment_csv, tmp_path, capsys):
    recipe = recipe_from_dict(_recipe(sentiment_csv, {"source": f"hf:{tiny_hf}", "max_length": 12}, {"source": "mlp"}))
    describe(recipe)  # --dry-run builds each model on its own view
    assert "views: 2 encodings" in capsys.readouterr().out
    result = run_recipe(recipe, tmp_path / "run")
    teacher, student = result.stages["teacher"], result.stages["student"]
    assert "tokenizer" in teacher.card.preprocess and "tfidf" in student.card.preprocess
    assert student.card.metrics["teacher_mode"].startswith("cached")
    assert teacher.data.train.x.dtype == torch.long and student.data.train.x.is_floating_point()
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert {"teacher", "student"} <= set(report["models"]) and "agreement" in report["models"]["student"]
    data, views = load_recipe_views(recipe)
    assert views is not None and data.train.x.is_floating_point()  # the run's data is the student's view


def test_each_saved_model_of_a_mixed_run_predicts_and_is_evaluated_from_raw_text(tiny_hf, sentiment_csv, tmp_path):
    recipe = recipe_from_dict(_recipe(sentiment_csv, {"source": f"hf:{tiny_hf}", "max_length": 12}, {"source": "mlp"}))
    result = run_recipe(recipe, tmp_path / "run")
    texts = tmp_path / "texts.txt"
    texts.write_text("the film was good\nawful food\n", encoding="utf-8")
    for stage in ("teacher", "student"):
        model_dir = tmp_path / "run" / stage / "model"
        predictions = predict_inputs(model_dir, texts, top_k=1)
        view = result.stages[stage].data  # the model's own encoder, fitted in the run
        encoded = torch.as_tensor(view.text_encoder.transform(["the film was good", "awful food"]))
        with torch.no_grad():
            expected = result.stages[stage].model.eval()(encoded).softmax(-1).max(-1).values
        torch.testing.assert_close(torch.tensor([p.probabilities[0] for p in predictions]), expected)
        assert main(["predict", str(model_dir), str(texts)]) == 0
        exported = export_model(model_dir, "safetensors", output=tmp_path / f"{stage}.safetensors")
        assert exported.samples == "12 test inputs"  # checked on its own view of the run's test split
    assert main(["evaluate", str(tmp_path / "run"), "-o", str(tmp_path / "scored")]) == 0
    scored = json.loads((tmp_path / "scored" / "report.json").read_text())["models"]
    ran = json.loads((tmp_path / "run" / "report.json").read_text())["models"]
    for stage in ("teacher", "student"):  # each scored again on its own view: the run's own numbers
        assert scored[stage]["accuracy"] == ran[stage]["accuracy"] and scored[stage]["nll"] == ran[stage]["nll"]
    student = tmp_path / "run" / "student" / "model"
    argv = [
        "evaluate",
        str(student),
        "--data",
        f"csv:{sentiment_csv}",
        "--teacher",
        str(tmp_path / "run" / "teacher" / "model"),
    ]
    assert main([*argv, "--data-option", "text_column=text"]) == 0


def test_two_hf_models_with_different_tokenizers_distil(tiny_hf, sentiment_csv, tmp_path):
    other = write_tiny_hf_model(tmp_path / "reversed", hidden=8, layers=1, seed=1, reverse=True)
    raw = _recipe(
        sentiment_csv, {"source": f"hf:{tiny_hf}", "max_length": 12}, {"source": f"hf:{other}", "max_length": 8}
    )
    result = run_recipe(recipe_from_dict(raw), tmp_path / "run")
    teacher, student = result.stages["teacher"], result.stages["student"]
    assert teacher.data.input_shape == (12,) and student.data.input_shape == (8,)
    assert not torch.equal(teacher.data.train.x[:, :8], student.data.train.x)  # other ids for the same texts
    assert student.card.metrics["teacher_mode"].startswith("cached")


def test_views_that_cannot_be_the_same_examples_are_refused(tiny_hf, sentiment_csv):
    views = _views(sentiment_csv)
    tokens, tfidf = views.for_model(f"hf:{tiny_hf}", SHORT), views.for_model("mlp", {})
    with pytest.raises(DataError, match=r"teacher reads 10 training examples and the student \d+"):
        with_teacher_view(tfidf.train, ArrayDataset(tokens.train.x[:10], tokens.train.y[:10]), "teacher")
    teacher = build_model(f"hf:{tiny_hf}", SHORT, tokens.input_shape, tokens.class_names, tokens.preprocess).module
    student = build_model("mlp", {"hidden": 4}, tfidf.input_shape, tfidf.class_names, tfidf.preprocess).module
    fewer = split_examples(f"csv:{sentiment_csv}", {"text_column": "text"}, seed=0, test_fraction=0.5)
    other = Views(fewer, model_text_encoder).for_model(f"hf:{tiny_hf}", SHORT)
    with pytest.raises(ProtegeError, match=r"the teacher's data holds train .* examples and the student's train"):
        distill(teacher, student, tfidf, teacher_data=other, epochs=1)
