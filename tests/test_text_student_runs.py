"""Text students end to end: an hf: teacher distilled into fasttext (its own vocabulary of the training
texts) and into textcnn (the teacher's tokenizer and embeddings); each saved student predicts from raw text
as evaluate scores it, and its ONNX and TorchScript exports give PyTorch's probabilities."""

import json
import math
import shutil

import numpy as np
import pytest
import torch

from protege.api import export as export_model
from protege.api import predict
from protege.cli import main
from protege.data.transfer import build_transfer_set
from protege.dry_run import describe
from protege.pipeline import load_recipe_views, recipe_examples, run_recipe
from protege.recipe_reader import recipe_from_dict

TRAIN = {"epochs": 2, "batch_size": 16, "lr": 0.01}
TEXTS = ["the film was good", "awful food", "a great night but the food was poor"]


def _recipe(csv, teacher: str, student: dict, transfer: bool = False) -> dict:
    raw = {
        "name": "students",
        "data": {"source": f"csv:{csv}", "options": {"text_column": "text"}},
        "teacher": {"model": {"source": teacher, "max_length": 12}, "train": TRAIN},
        "student": {"model": student, "objective": {"name": "kd", "temperature": 2}, "train": {**TRAIN, "epochs": 4}},
        "evaluate": {"latency": False},
    }
    if transfer:
        raw["transfer"] = {"source": f"csv:{csv}", "options": {"text_column": "text"}}
    return raw


def _probabilities(model_dir, texts) -> np.ndarray:
    return np.array(
        [
            [p.probabilities[p.classes.index(c)] for c in ("neg", "pos")]
            for p in predict(model_dir, texts=texts, top_k=2)
        ]
    )


@pytest.fixture(scope="module")
def fasttext_run(tmp_path_factory):
    from tests.conftest import write_sentiment_csv, write_tiny_hf_model

    tmp = tmp_path_factory.mktemp("fasttext")
    teacher, csv = write_tiny_hf_model(tmp / "tiny-bert"), write_sentiment_csv(tmp / "sentiment.csv")
    student = {"source": "fasttext", "dim": 16, "buckets": 256, "max_length": 16}
    recipe = recipe_from_dict(_recipe(csv, f"hf:{teacher}", student))
    return tmp, recipe, run_recipe(recipe, tmp / "run")


def test_an_hf_teacher_distils_into_fasttext_with_its_own_vocabulary(fasttext_run):
    tmp, recipe, result = fasttext_run
    student = result.stages["student"]
    assert student.card.metrics["teacher_mode"].startswith("cached")  # once per example, on its own view
    words = student.card.preprocess["word_ids"]["words"]
    training = {w for text in recipe_examples(recipe).splits.x for w in str(text).lower().split()}
    assert set(words) == training and student.data.train.x.dtype == torch.long
    _, views = load_recipe_views(recipe)
    assert views is not None and len(views) == 2
    report = json.loads((tmp / "run" / "report.json").read_text())["models"]
    assert "agreement" in report["student"] and report["student"]["parameters"] == sum(
        p.numel() for p in student.model.parameters()
    )


def test_the_saved_fasttext_predicts_raw_text_as_evaluate_scores_it(fasttext_run):
    tmp, recipe, result = fasttext_run
    model_dir = tmp / "run" / "student" / "model"
    examples = recipe_examples(recipe)
    texts = [str(t) for t in examples.splits.x_test]
    probabilities = _probabilities(model_dir, texts)
    view = result.stages["student"].data
    with torch.no_grad():
        expected = result.stages["student"].model.eval()(view.test.x).softmax(-1).numpy()
    np.testing.assert_allclose(probabilities, expected, rtol=1e-5, atol=1e-6)
    assert main(["evaluate", str(tmp / "run"), "-o", str(tmp / "scored")]) == 0
    scored = json.loads((tmp / "scored" / "report.json").read_text())["models"]["student"]
    labels = examples.splits.y_test
    nll = -np.mean([math.log(p[y]) for p, y in zip(probabilities, labels, strict=True)])
    assert scored["nll"] == pytest.approx(nll, rel=1e-4)
    ran = json.loads((tmp / "run" / "report.json").read_text())["models"]["student"]
    assert scored["accuracy"] == ran["accuracy"] and scored["nll"] == pytest.approx(ran["nll"], rel=1e-6)


@pytest.mark.parametrize("format", ["onnx", "torchscript"])
def test_fasttext_exports_give_pytorchs_probabilities(fasttext_run, format):
    tmp, _, _ = fasttext_run
    model_dir = tmp / "run" / "student" / "model"
    exported = export_model(
        model_dir, format, output=tmp / f"fasttext.{ {'onnx': 'onnx', 'torchscript': 'pt'}[format] }"
    )
    assert exported.samples == "12 test inputs"
    np.testing.assert_allclose(_probabilities(exported.path, TEXTS), _probabilities(model_dir, TEXTS), atol=1e-6)
    (tmp / "texts.txt").write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    assert main(["predict", str(exported.path), str(tmp / "texts.txt")]) == 0


@pytest.fixture(scope="module")
def textcnn_run(tmp_path_factory):
    """A textcnn student reading the teacher's tokenizer, its embeddings started from the teacher's folder."""
    from tests.conftest import write_sentiment_csv, write_tiny_hf_model

    tmp = tmp_path_factory.mktemp("textcnn")
    teacher, csv = write_tiny_hf_model(tmp / "tiny-bert"), write_sentiment_csv(tmp / "sentiment.csv")
    source = f"hf:{teacher}"
    student = {"source": "textcnn", "tokenizer": source, "embeddings_from": source, "dim": 16, "max_length": 12}
    recipe = recipe_from_dict(_recipe(csv, source, {**student, "channels": 8, "kernel_sizes": [2, 3]}))
    return tmp, recipe, run_recipe(recipe, tmp / "run")


def test_an_hf_teacher_distils_into_textcnn_through_its_own_tokenizer(textcnn_run):
    tmp, recipe, result = textcnn_run
    teacher, student = result.stages["teacher"], result.stages["student"]
    assert student.data is teacher.data  # the same ids: one view, the teacher's
    _, views = load_recipe_views(recipe)
    assert len(views) == 1
    assert student.card.preprocess["tokenizer"]["vocab_size"] == student.model.vocab_size
    assert (tmp / "run" / "student" / "model" / "tokenizer.json").is_file()
    assert student.card.metrics["teacher_mode"].startswith("cached")


def test_the_saved_textcnn_carries_its_tokenizer_into_every_export(textcnn_run):
    tmp, _, result = textcnn_run
    model_dir = tmp / "run" / "student" / "model"
    exports = {f: export_model(model_dir, f, output=tmp / "exports" / f"m{s}").path for f, s in
               (("onnx", ".onnx"), ("torchscript", ".pt"), ("safetensors", ".safetensors"))}  # fmt: skip
    expected = _probabilities(model_dir, TEXTS)
    shutil.rmtree(tmp / "tiny-bert")  # the tokenizer travels with the model and its exports
    encoded = torch.as_tensor(result.stages["student"].data.text_encoder.transform(TEXTS))
    with torch.no_grad():
        direct = result.stages["student"].model.eval()(encoded).softmax(-1).numpy()
    np.testing.assert_allclose(expected, direct, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_probabilities(model_dir, TEXTS), expected, atol=1e-7)
    for path in exports.values():
        np.testing.assert_allclose(_probabilities(path, TEXTS), expected, atol=1e-6)


def test_a_text_student_reading_the_teachers_tokenizer_distils_with_a_transfer_set(tmp_path, tiny_hf, sentiment_csv):
    student = {"source": "fasttext", "tokenizer": f"hf:{tiny_hf}", "max_length": 12, "dim": 8, "buckets": 32}
    result = run_recipe(
        recipe_from_dict(_recipe(sentiment_csv, f"hf:{tiny_hf}", student, transfer=True)), tmp_path / "run"
    )
    assert result.stages["student"].card.metrics["teacher_mode"].startswith("cached")
    assert len(predict(tmp_path / "run" / "student" / "model", texts=TEXTS)) == 3


@pytest.fixture
def recorded(monkeypatch):
    """Each stage's training set (by stage name) and the log lines of the teacher pass, of the next run."""
    from protege.engine import run as engine_run
    from protege.plan import runner

    seen: dict = {"logs": []}
    fit = runner.fit

    def recording(module, train_set, *args, stage, **kwargs):
        seen[stage] = train_set
        return fit(module, train_set, *args, stage=stage, **kwargs)

    monkeypatch.setattr(runner, "fit", recording)
    monkeypatch.setattr(engine_run, "log", seen["logs"].append)
    return seen


MORE = ["the food was great", "awful film", "quite good", "very poor food"]


def test_an_hf_teacher_distils_into_fasttext_of_its_own_vocabulary_with_a_file_of_texts(
    tmp_path, tiny_hf, sentiment_csv, recorded, capsys
):
    """The transfer texts are one set of raw texts that each stage encodes its own way: the teacher labels
    them through its tokenizer, and the student learns on the same texts, in the same order, as word ids."""
    (tmp_path / "more.txt").write_text("\n".join(MORE) + "\n", encoding="utf-8")
    student = {"source": "fasttext", "dim": 8, "buckets": 32, "max_length": 16}
    raw = {**_recipe(sentiment_csv, f"hf:{tiny_hf}", student), "transfer": {"source": f"texts:{tmp_path / 'more.txt'}"}}
    describe(recipe_from_dict(raw))
    assert f"transfer set: 4 unlabeled texts from texts:{tmp_path / 'more.txt'}" in capsys.readouterr().out
    result = run_recipe(recipe_from_dict(raw), tmp_path / "run")
    teacher, fasttext = result.stages["teacher"], result.stages["student"]
    assert fasttext.card.metrics["teacher_mode"].startswith("cached") and "word_ids" in fasttext.card.preprocess
    trained = recorded["student"]
    n = len(fasttext.data.train)
    assert len(trained) == n + 4 and not trained.labeled[n:].any() and trained.labeled[:n].all()
    assert torch.equal(trained.x[n:], torch.as_tensor(fasttext.data.text_encoder.transform(MORE)))
    assert torch.equal(trained.teacher_x[n:], torch.as_tensor(teacher.data.text_encoder.transform(MORE)))
    assert torch.equal(trained.teacher_x[:n], teacher.data.train.x)  # the labelled examples, in their order
    assert len(recorded["teacher"]) == n  # the teacher trains on the labelled examples only
    said = [line for line in recorded["logs"] if "labelled" in line]
    assert len(said) == 1 and f"labelled {n + 4} examples (4 of them unlabeled) in " in said[0]


def test_an_hf_teacher_distils_into_a_tfidf_student_on_spans_of_the_training_texts_mixed(
    tmp_path, tiny_hf, sentiment_csv, recorded
):
    """span_mix makes new texts of the training texts' words; the teacher reads them as token ids and the
    student as TF-IDF features, the same texts in the same order, and a run with the same seed makes them again."""
    transfer = {"source": "span_mix", "options": {"num_samples": 40, "fraction": 0.4}, "limit": 30}
    raw = {**_recipe(sentiment_csv, f"hf:{tiny_hf}", {"source": "mlp", "hidden": 8}), "transfer": transfer}
    recipe = recipe_from_dict(raw)
    result = run_recipe(recipe, tmp_path / "run")
    teacher, student = result.stages["teacher"], result.stages["student"]
    trained, n = recorded["student"], len(student.data.train)
    assert len(trained) == n + 30 and trained.x.is_floating_point() and trained.teacher_x.dtype == torch.long
    texts = build_transfer_set("span_mix", transfer["options"], student.data, recipe.seed, 30).texts
    assert torch.equal(trained.teacher_x[n:], torch.as_tensor(teacher.data.text_encoder.transform(texts)))
    torch.testing.assert_close(trained.x[n:], torch.as_tensor(student.data.text_encoder.transform(texts)))
    training = {word for text in student.data.texts for word in str(text).split()}
    assert all(set(text.split()) <= training for text in texts)
