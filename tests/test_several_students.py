"""Several students distilled from one teacher in one run (``students:``): each reads its own inputs, is
saved on its own, and the report compares each with the teacher (accuracy kept, speed-up from raw text
and model-only); misnamed or misplaced further students are one line."""

import json

import pytest
from tests.conftest import write_sentiment_csv, write_tiny_hf_model

from protege.cli import main
from protege.pipeline import run_recipe
from protege.predict import predict
from protege.recipe_reader import recipe_from_dict

TRAIN = {"epochs": 2, "batch_size": 16, "lr": 0.01}
KD = {"name": "kd", "temperature": 2}


def _recipe(tmp, **changes) -> dict:
    teacher, csv = write_tiny_hf_model(tmp / "tiny-bert"), write_sentiment_csv(tmp / "sentiment.csv")
    raw = {
        "name": "several",
        "data": {"source": f"csv:{csv}", "options": {"text_column": "text"}},
        "teacher": {"model": {"source": f"hf:{teacher}", "max_length": 12}, "train": TRAIN},
        "student": {
            "model": {"source": "fasttext", "dim": 8, "buckets": 64, "max_length": 12},
            "objective": KD,
            "train": TRAIN,
        },
        "students": {
            "textcnn": {"model": {"source": "textcnn", "dim": 8, "max_length": 12}, "objective": KD, "train": TRAIN},
            "cut": {
                "model": {"source": f"hf:{teacher}", "max_length": 12, "num_hidden_layers": 1},
                "objective": KD,
                "train": TRAIN,
            },
        },
        "evaluate": {"latency_batch_sizes": [1, 4]},
    }
    return {**raw, **changes}


@pytest.fixture(scope="module")
def several(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("several")
    return tmp, run_recipe(recipe_from_dict(_recipe(tmp)), tmp / "run")


def test_each_further_student_distils_from_the_teacher_and_is_saved_on_its_own(several):
    tmp, result = several
    assert list(result.stages) == ["teacher", "student", "textcnn", "cut"]
    for name in ("student", "textcnn", "cut"):
        card = json.loads((tmp / "run" / name / "model" / "model.json").read_text())
        assert card["metrics"]["teacher_mode"].startswith("cached")
    assert result.stages["cut"].model.backbone.config.num_hidden_layers == 1
    probabilities = predict(tmp / "run" / "textcnn" / "model", texts=["the film was good"], top_k=2)
    assert len(probabilities) == 1 and abs(sum(probabilities[0].probabilities) - 1) < 1e-5


def test_the_report_compares_every_student_with_the_teacher_from_raw_text_and_model_only(several):
    tmp, _ = several
    report = json.loads((tmp / "run" / "report.json").read_text())
    models = report["models"]
    assert set(models) == {"teacher", "student", "textcnn", "cut"}
    for name in ("student", "textcnn", "cut"):
        entry = models[name]
        assert entry["accuracy_retained"] == pytest.approx(entry["accuracy"] / models["teacher"]["accuracy"])
        assert set(entry["speedup"]) == set(entry["speedup_from_text"]) == {"1", "4"}
        ratio = models["teacher"]["latency_from_text_ms"]["1"] / entry["latency_from_text_ms"]["1"]
        assert entry["speedup_from_text"]["1"] == pytest.approx(ratio)
    assert models["textcnn"]["title"] == "textcnn"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"teacher": None}, "students: further students distil beside 'student' from a 'teacher'; name both"),
        ({"students": {"teacher_2": {"model": {"source": "fasttext"}}}}, "students: 'teacher_2' cannot name a student"),
        (
            {"students": {"other": {"model": {"source": "fasttext"}, "generations": 2}}},
            "students.other: generations and baseline belong to 'student' alone",
        ),
    ],
)
def test_misplaced_further_students_are_one_line(tmp_path, capsys, changes, message):
    import yaml

    raw = {k: v for k, v in _recipe(tmp_path, **changes).items() if v is not None}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["run", str(path), "-o", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "run").exists()
