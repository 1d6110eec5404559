"""Robust recipes end to end: PGD teacher, student alone under PGD, student distilled with RSLAD or ARD;
robust accuracy beside clean accuracy in report.json, the printed tables and report.html; the methods in
the cards and the dry run; the bundled recipe; resume in the middle of a stage gives the same numbers."""

import json

import pytest
from tests.interrupt import StepCounter, Stop

from protege.cli import main
from protege.models.store import read_card
from protege.pipeline import run_recipe as run
from protege.recipe_reader import recipe_from_dict

TRAIN = {"epochs": 4, "batch_size": 64, "lr": 0.003, "schedule": "constant", "restore_best": False}


def _recipe(student="rslad", teacher="pgd", **train):
    return recipe_from_dict(
        {
            "name": "robust",
            "data": {"source": "digits", "standardize": True},
            "robust": {
                "epsilon": 0.1,
                "steps": 3,
                "input_range": [0, 1],
                "teacher": teacher,
                "student": student,
                "evaluate": {"steps": 5, "restarts": 2},
            },
            "teacher": {"model": {"source": "mlp", "hidden": 128}, "train": {**TRAIN, **train}},
            "student": {"model": {"source": "mlp", "hidden": 16}, "train": {**TRAIN, **train}, "baseline": True},
            "evaluate": {"latency": False},
        }
    )


@pytest.fixture(scope="module")
def robust_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("robust") / "run"
    return out, run(_recipe(), output_dir=out)


def test_every_model_has_robust_accuracy_beside_clean_accuracy(robust_run):
    out, result = robust_run
    report = json.loads((out / "report.json").read_text())
    assert set(report["models"]) == {"teacher", "student_baseline", "student"}
    for name, entry in report["models"].items():
        assert 0 < entry["robust_accuracy"] < entry["accuracy"], name
        assert entry["robust_seconds"] > 0
    student, teacher = report["models"]["student"], report["models"]["teacher"]
    assert student["robust_accuracy_retained"] == pytest.approx(student["robust_accuracy"] / teacher["robust_accuracy"])
    assert "robust_accuracy_retained" not in teacher
    robust = report["evaluation"]["robust"]
    assert robust | {"step_size": None} == {
        "attack": "pgd", "norm": "linf", "epsilon": 0.1, "steps": 5, "step_size": None, "random_start": True,
        "restarts": 2, "loss": "cross_entropy", "model_mode": "eval", "input_range": [0.0, 1.0],
        "standardized": True, "units": "raw", "examples": 360, "seed": 0,
        "robust_if": "correct on the natural input and on the adversarial input of every restart",
    }  # fmt: skip
    assert robust["step_size"] == pytest.approx(2.5 * 0.1 / 5)
    assert report["models"] == result.report["models"]


def test_each_card_says_how_its_model_trained(robust_run):
    out, _ = robust_run
    methods = {
        name: read_card(out / name / "model").metrics["robust"] for name in ("teacher", "student_baseline", "student")
    }
    assert methods["teacher"]["method"] == "pgd" and methods["student_baseline"]["method"] == "pgd"
    assert methods["student"] == {
        "method": "rslad",
        "adversarial_weight": pytest.approx(5 / 6),
        "attack": {
            "norm": "linf",
            "epsilon": 0.1,
            "steps": 3,
            "step_size": pytest.approx(0.25 / 3),
            "random_start": True,
        },
    }
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    student = [r for r in history if r["stage"] == "student"]
    assert {"train_rslad_adv", "train_rslad_nat"} <= set(student[0])
    assert "train_adv_ce" in next(r for r in history if r["stage"] == "teacher")


def test_the_page_and_the_table_show_robust_accuracy(robust_run, monkeypatch):
    out, result = robust_run
    page = (out / "report.html").read_text()
    assert "<h2>Robustness</h2>" in page and "robust accuracy" in page and "rslad (adversarial_weight=0.833)" in page
    from protege.console import out_console
    from protege.report.summary import print_summary

    monkeypatch.setenv("PROTEGE_QUIET", "0")
    with out_console.capture() as captured:
        print_summary(result.report)
    text = captured.get()
    assert "robust acc" in text and "PGD-5, 2 restarts (random starts), L∞ ε = 0.1" in text


def test_evaluate_scores_a_robust_run_under_its_own_attack(robust_run):
    from protege.config import EvaluateConfig
    from protege.report.standalone import evaluate_saved

    out, result = robust_run
    report = evaluate_saved(str(out), None, EvaluateConfig(latency=False, html=False))
    for name, entry in result.report["models"].items():
        assert report["models"][name]["robust_accuracy"] == entry["robust_accuracy"], name
    assert report["evaluation"]["robust"] == result.report["evaluation"]["robust"]


def test_adversarial_training_makes_the_teacher_robust(robust_run, tmp_path):
    _, result = robust_run
    plain = run(_recipe(teacher="plain", student="pgd"), output_dir=tmp_path / "plain").report["models"]["teacher"]
    trained = result.report["models"]["teacher"]
    assert trained["robust_accuracy"] > plain["robust_accuracy"] + 0.3
    assert plain["training"]["robust"] == {"method": "plain"}


def test_ard_distils_a_robust_student(tmp_path):
    report = run(_recipe(student={"name": "ard", "alpha": 0.9, "temperature": 4}), output_dir=tmp_path / "ard").report
    student = report["models"]["student"]
    assert student["training"]["robust"]["method"] == "ard" and student["training"]["teacher_mode"] == "cached (memory)"
    assert student["robust_accuracy"] > 0.15  # the same student distilled without attacks keeps about 0.01


def test_the_dry_run_names_each_stages_method(tmp_path, capsys, monkeypatch):
    from protege.console import out_console

    monkeypatch.setattr(out_console, "width", 300)  # one line per stage
    assert main(["run", "robust", "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "pgd: PGD-5 L∞ ε=0.1" in text and "rslad, adversarial_weight=0.833" in text and "teacher teacher" in text


def test_the_bundled_recipe_runs(tmp_path):
    short = ["--set", "teacher.train.epochs=1", "--set", "student.train.epochs=1", "--set", "robust.evaluate.steps=2",
             "--set", "evaluate.latency=false"]  # fmt: skip
    assert main(["run", "robust", "-o", str(tmp_path / "run"), *short]) == 0
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert {name: entry["training"]["robust"]["method"] for name, entry in report["models"].items()} == {
        "teacher": "pgd", "student_baseline": "pgd", "student": "rslad"}  # fmt: skip
    assert all(0 <= entry["robust_accuracy"] <= entry["accuracy"] for entry in report["models"].values())


def _timeless(history: dict) -> dict:
    """Learning curves without the seconds each epoch took."""
    return {
        stage: [{k: v for k, v in r.items() if k != "seconds"} for r in records] for stage, records in history.items()
    }


def test_resume_in_the_middle_of_a_stage_gives_the_same_numbers(tmp_path, monkeypatch):
    recipe = _recipe(checkpoint_every=5)
    calls = StepCounter(monkeypatch)
    whole = run(recipe, output_dir=tmp_path / "whole").report
    steps = calls.n
    per_stage = steps // 3  # teacher, student alone, student: the same data and batch size
    stop = 2 * per_stage + per_stage // 4 + 3  # in the distilled student's second epoch, between checkpoints
    calls.reset(stop)
    with pytest.raises(Stop):
        run(recipe, output_dir=tmp_path / "cut")
    calls.reset()
    resumed = run(recipe, output_dir=tmp_path / "cut", resume=True).report
    # the teacher and the student alone were loaded; the student continued from its last checkpoint (every 5)
    assert steps - stop < calls.n <= steps - stop + 5
    for name, entry in whole["models"].items():
        for key in ("accuracy", "robust_accuracy", "nll"):
            assert resumed["models"][name][key] == entry[key], (name, key)
    assert _timeless(resumed["history"]) == _timeless(whole["history"])
