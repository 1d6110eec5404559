"""Problems a recipe or a command can state are found before the work they would waste: before the
teacher trains, before an export is computed, before a report is evaluated."""

from __future__ import annotations

import importlib
import os

import pytest
from tests.catalogue import recipe, saved_model

from protege.cli import main
from protege.errors import ConfigError

TEACHER = {"model": {"source": "mlp", "hidden": 16}, "train": {"epochs": 1, "batch_size": 256}}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"transfer": {"source": "csv:/nowhere/transfer.csv"}}, "data file not found"),
        ({"transfer": {"source": "mnist1d", "options": {"num_samples": 100}}}, "transfer set inputs have shape"),
        ({"student.objective": {"name": "kd", "temperature": 0}}, "temperature: Input should be greater than 0"),
        ({"student.strategy": {"name": "finetune", "backbone_lr_scale": 0}}, "backbone_lr_scale: Input should be"),
        ({"student.train.augment": [{"name": "random_crop", "size": [12, 12]}]}, "smaller than the crop size"),
        ({"student.train.augment": ["mixup"], "student.train.augment_views": 2}, "no cached view of one example"),
    ],
)
def test_a_student_problem_stops_the_run_before_the_teacher_trains(changes, message, tmp_path, capsys):
    changes = {"teacher": TEACHER, "student.objective": {"name": "kd"}, **changes}
    assert main(recipe(tmp_path, changes)) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run" / "teacher").exists()


def test_a_cut_the_students_config_cannot_take_stops_the_run_before_the_teacher_trains(tmp_path, capsys):
    from tests.catalogue.hf import cut_student

    assert main(cut_student(tmp_path, layers_from=[5])) == 2
    assert "layers_from names layer 5, but the pretrained model has layers 0 to 1" in capsys.readouterr().err
    assert not (tmp_path / "run" / "teacher").exists()


def test_the_python_api_refuses_an_objective_out_of_range_before_training():
    import protege
    from protege.models.builtin import mlp

    teacher, student = mlp((1, 8, 8), 10, hidden=8), mlp((1, 8, 8), 10, hidden=4)
    with pytest.raises(ConfigError, match="alpha: Input should be less than or equal to 1"):
        protege.distill(teacher, student, "digits", alpha=2, epochs=1)


def _refuse_writing_in(monkeypatch, folder):
    real = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: real(path, mode) and os.fspath(path) != os.fspath(folder))


def test_export_checks_that_it_can_write_before_exporting(tmp_path, capsys, monkeypatch):
    export = importlib.import_module("protege.export")  # the package's ``export`` is the API function
    model = saved_model(tmp_path, 10)
    (tmp_path / "locked").mkdir()
    _refuse_writing_in(monkeypatch, tmp_path / "locked")
    monkeypatch.setattr(export, "sample_inputs", lambda *a, **k: pytest.fail("exported before checking the output"))
    assert main(["export", str(model), "-o", str(tmp_path / "locked" / "new" / "model.onnx")]) == 2
    err = capsys.readouterr().err
    assert f"no permission to write in {tmp_path / 'locked'}; choose another place" in err and err.count("\n") == 1


def test_evaluate_checks_its_output_folder_before_evaluating(tmp_path, capsys, monkeypatch):
    import protege.report.standalone as standalone

    model = saved_model(tmp_path, 10)
    (tmp_path / "reports").mkdir()
    _refuse_writing_in(monkeypatch, tmp_path / "reports")
    monkeypatch.setattr(standalone, "split_examples", lambda *a, **k: pytest.fail("evaluated before checking output"))
    assert main(["evaluate", str(model), "--data", "digits", "-o", str(tmp_path / "reports")]) == 2
    assert "no permission to write in" in capsys.readouterr().err
