"""The command line: one-line errors with exit code 2, and each subcommand end to end on tiny settings."""

import json
import os
import subprocess
import sys

import pytest
import yaml

from protege.cli import main

FAST = ["--epochs", "1", "--batch-size", "256"]


def _errors(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("protege: error: ")
    return err


def _recipe(tmp_path, **changes):
    raw = {
        "name": "cli",
        "data": {"source": "digits"},
        "student": {"model": {"source": "mlp", "hidden": 8}, "train": {"epochs": 1}},
        "evaluate": {"latency": False},
    }
    raw.update(changes)
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_unknown_field(capsys, tmp_path):
    err = _errors(capsys, ["run", str(_recipe(tmp_path, seeed=1))])
    assert 'seeed: unknown field (did you mean "seed"?)' in err


def test_wrong_type(capsys, tmp_path):
    err = _errors(capsys, ["run", str(_recipe(tmp_path, seed="abc"))])
    assert "seed: Input should be a valid integer" in err


def test_missing_recipe_file(capsys, tmp_path):
    assert "recipe not found" in _errors(capsys, ["run", str(tmp_path / "missing.yaml")])


def test_missing_data_file(capsys, tmp_path):
    path = _recipe(tmp_path, data={"source": f"csv:{tmp_path / 'gone.csv'}"})
    assert "data file not found" in _errors(capsys, ["run", str(path), "-o", str(tmp_path / "run")])


def test_missing_label_column(capsys, tmp_path):
    (tmp_path / "d.csv").write_text("a,b,target\n1,2,x\n3,4,y\n")
    path = _recipe(tmp_path, data={"source": f"csv:{tmp_path / 'd.csv'}"})
    err = _errors(capsys, ["run", str(path), "-o", str(tmp_path / "run")])
    assert "no column 'label'" in err and "columns: a, b, target" in err


def test_teacher_with_other_number_of_classes(capsys, tmp_path):
    assert main(["train", "--model", "mlp", "--data", "digits", "-o", str(tmp_path / "t"), *FAST]) == 0
    (tmp_path / "d.csv").write_text("".join(f"{i},{i % 3}\n" for i in range(30)).join(["f,label\n", ""]))
    err = _errors(
        capsys,
        [
            "distill",
            "--teacher",
            f"run:{tmp_path / 't'}",
            "--student",
            "mlp",
            "--data",
            f"csv:{tmp_path / 'd.csv'}",
            "-o",
            str(tmp_path / "d"),
            *FAST,
        ],
    )
    assert "predicts 10 classes but the data has 3" in err


def test_bad_override_and_option(capsys, tmp_path):
    assert "key.path=value" in _errors(capsys, ["run", str(_recipe(tmp_path)), "--set", "oops"])
    err = _errors(capsys, ["train", "--model", "mlp", "--option", "hiden=3", "--data", "digits", *FAST])
    assert 'did you mean "hidden"' in err


def test_train_then_distill_from_flags(capsys, tmp_path):
    assert (
        main(
            [
                "train",
                "--model",
                "cnn2d",
                "--option",
                "width=8",
                "--data",
                "digits",
                "-o",
                str(tmp_path / "teacher"),
                *FAST,
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "distill",
                "--teacher",
                f"run:{tmp_path / 'teacher'}",
                "--student",
                "mlp",
                "--student-option",
                "hidden=[8]",
                "--data",
                "digits",
                "--temperature",
                "2",
                "--alpha",
                "0.5",
                "--baseline",
                "-o",
                str(tmp_path / "student"),
                *FAST,
            ]
        )
        == 0
    )
    report = json.loads((tmp_path / "student" / "report.json").read_text())
    assert set(report["models"]) == {"teacher", "student_baseline", "student"}
    config = yaml.safe_load((tmp_path / "student" / "config.yaml").read_text())
    assert config["student"]["objective"] == {"name": "kd", "weight": 1.0, "temperature": 2.0, "alpha": 0.5}


def test_untrained_teacher_from_flags_is_refused(capsys):
    err = _errors(capsys, ["distill", "--teacher", "mlp", "--student", "mlp", "--data", "digits"])
    assert "teacher.train" in err


def test_dry_run_prints_the_plan(capsys, tmp_path):
    assert main(["run", "demo", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "train 1212 / val 135 / test 450" in out and "kd(temperature=4" in out
    assert not (tmp_path / "runs").exists()


def test_resume_needs_an_existing_run(capsys, tmp_path):
    err = _errors(capsys, ["run", str(_recipe(tmp_path)), "-o", str(tmp_path / "none"), "--resume"])
    assert "nothing to resume" in err


def test_the_installed_command_prints_no_traceback(tmp_path):
    env = dict(os.environ, PROTEGE_QUIET="1")
    done = subprocess.run(
        [sys.executable, "-m", "protege.cli", "run", str(_recipe(tmp_path, studnt={}))],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f'protege: error: {tmp_path / "r.yaml"}: studnt: unknown field (did you mean "student"?)'
    ]


@pytest.mark.slow
def test_demo_command_runs(tmp_path):
    env = dict(os.environ, PROTEGE_QUIET="0")
    done = subprocess.run(
        [sys.executable, "-m", "protege.cli", "demo", "-o", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "student distilled" in done.stdout and "test acc" in done.stdout
    report = json.loads((tmp_path / "demo" / "report.json").read_text())
    assert report["models"]["student"]["accuracy"] > 0.9
    page = (tmp_path / "demo" / "report.html").read_text()
    assert "student distilled" in page and "Fairness check" in page


def test_python_dash_m_protege_is_the_cli():
    done = subprocess.run([sys.executable, "-m", "protege", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "evaluate" in done.stdout and "rank" in done.stdout
