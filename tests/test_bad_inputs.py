"""The catalogue of bad inputs: each one ends in a single line that names the problem (and, where
there is one, the fix), exit code 2, no traceback, and nothing already written is touched.

Each case builds its inputs in a fresh folder and returns the command line; the test runs the CLI
in-process, checks the message, and checks that every file that existed before is unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from protege.cli import main
from protege.models import ModelCard, save_model
from protege.models.builtin import mlp

BASE = {
    "name": "bad",
    "data": {"source": "digits"},
    "student": {"model": {"source": "mlp", "hidden": 8}, "train": {"epochs": 1, "batch_size": 256}},
    "evaluate": {"latency": False},
}


def recipe(tmp: Path, changes: dict | None = None, raw: dict | None = None) -> list[str]:
    """A recipe file: BASE with top-level ``changes`` (dotted keys reach into blocks), or ``raw`` as is."""
    body = json.loads(json.dumps(raw if raw is not None else BASE))
    for key, value in (changes or {}).items():
        *parents, last = key.split(".")
        node = body
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    path = tmp / "recipe.yaml"
    path.write_text(yaml.safe_dump(body))
    return ["run", str(path), "-o", str(tmp / "run")]


def written(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def csv_data(tmp: Path, text: str, **options) -> list[str]:
    (tmp / "data.csv").write_text(text)
    return recipe(tmp, {"data": {"source": f"csv:{tmp / 'data.csv'}", "options": options}})


def npz_data(tmp: Path, **arrays) -> list[str]:
    np.savez(tmp / "data.npz", **arrays)
    return recipe(tmp, {"data": {"source": f"npz:{tmp / 'data.npz'}"}})


def saved_model(tmp: Path, classes: int) -> Path:
    directory = tmp / "other_model"
    names = [str(i) for i in range(classes)]
    save_model(mlp((1, 8, 8), classes, hidden=4), ModelCard("mlp", {"hidden": 4}, [1, 8, 8], names), directory)
    return directory


def existing_run(tmp: Path) -> list[str]:
    (tmp / "run").mkdir()
    (tmp / "run" / "config.yaml").write_text("name: earlier\n")
    (tmp / "run" / "notes.txt").write_text("results I care about\n")
    return recipe(tmp)


def checkpoint_of_another_version(tmp: Path) -> list[str]:
    argv = recipe(tmp)
    assert main(argv) == 0
    for state in (tmp / "run").glob("student/checkpoints/step-*/state.json"):
        meta = json.loads(state.read_text())
        state.write_text(json.dumps({**meta, "checkpoint_version": 99}))
    (tmp / "run" / "student" / "model" / "model.json").unlink()  # as if killed before the model was saved
    return [*argv, "--resume"]


def image_folder(tmp: Path, odd: str) -> list[str]:
    """Two classes of 4×4 grey PNGs plus one odd file: corrupt, another size, or another colour mode."""
    from PIL import Image

    for label in ("a", "b"):
        (tmp / "images" / label).mkdir(parents=True)
        for i in range(4):
            Image.new("L", (4, 4), 60 * i).save(tmp / "images" / label / f"{i}.png")
    odd_file = tmp / "images" / "b" / "odd.png"
    if odd == "corrupt":
        odd_file.write_bytes(b"\x89PNG but not really")
    else:
        Image.new("RGB" if odd == "mode" else "L", (4, 4) if odd == "mode" else (9, 7)).save(odd_file)
    return recipe(tmp, {"data": {"source": f"imagefolder:{tmp / 'images'}"}})


TEACHER = {"model": {"source": "mlp", "hidden": 16}, "train": {"epochs": 1, "batch_size": 256}}
KD = {"name": "kd"}

CASES: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "unknown field": (lambda t: recipe(t, {"seeed": 1}), 'seeed: unknown field (did you mean "seed"?)'),
    "misspelled nested field": (
        lambda t: recipe(t, {"student.trian": {}}),
        'student.trian: unknown field (did you mean "train"?)',
    ),
    "wrong type": (lambda t: recipe(t, {"student.train.epochs": "ten"}), "student.train.epochs: Input should be"),
    "value out of range": (lambda t: recipe(t, {"student.train.lr": -1}), "student.train.lr: Input should be greater"),
    "teacher batch size of zero": (
        lambda t: recipe(t, {"student.train.teacher_batch_size": 0}),
        "student.train.teacher_batch_size: Input should be greater than or equal to 1",
    ),
    "missing recipe file": (lambda t: ["run", str(t / "nope.yaml")], "recipe not found"),
    "empty recipe file": (lambda t: ["run", written(t / "empty.yaml", "")], "a recipe must be a mapping"),
    "yaml syntax error": (lambda t: ["run", written(t / "r.yaml", "data: [unclosed\n")], "is not valid YAML"),
    "malformed override": (lambda t: [*recipe(t), "--set", "seed"], "must look like key.path=value"),
    "recipe name that leaves the runs folder": (lambda t: recipe(t, {"name": "../../etc"}), "name: String should"),
    "unknown data source": (lambda t: recipe(t, {"data.source": "digitz"}), 'did you mean "digits"'),
    "missing data file": (lambda t: recipe(t, {"data.source": f"csv:{t / 'nope.csv'}"}), "data file not found"),
    "empty data file": (lambda t: csv_data(t, ""), "data file is empty"),
    "csv with only a header": (lambda t: csv_data(t, "a,b,label\n"), "no data rows under the header"),
    "csv without the named column": (
        lambda t: csv_data(t, "a,b,class\n1,2,x\n3,4,y\n", label_column="label"),
        "no column 'label'; columns: a, b, class",
    ),
    "text in a numeric column": (lambda t: csv_data(t, "a,label\n1,x\nfoo,y\n"), "line 3, column 'a': 'foo' is not"),
    "NaN in features": (lambda t: npz_data(t, x=np.array([[1.0], [np.nan]] * 5), y=np.arange(10) % 2), "NaN"),
    "single-class data set": (lambda t: npz_data(t, x=np.ones((10, 2)), y=np.zeros(10, dtype=int)), "only one class"),
    "label outside the class list": (
        lambda t: npz_data(t, x=np.ones((10, 2)), y=np.arange(10) % 3, class_names=np.array(["a", "b"])),
        "label 2 is not a class index 0..1",
    ),
    "pickled arrays": (
        lambda t: npz_data(t, x=np.array([object()] * 4, dtype=object), y=np.arange(4)),
        "cannot read without unpickling",
    ),
    "corrupt image file": (lambda t: image_folder(t, "corrupt"), "odd.png: not a readable image"),
    "images of mixed sizes": (lambda t: image_folder(t, "size"), "set options.size: [height, width]"),
    "images of mixed colour modes": (lambda t: image_folder(t, "mode"), "set options.mode: RGB (or L)"),
    "texts that are all empty": (
        lambda t: csv_data(t, "text,label\n" + ",a\n ,b\n" * 10, text_column="text"),
        "the text column gives no words",
    ),
    "unknown model source": (lambda t: recipe(t, {"student.model": {"source": "mlpp"}}), 'did you mean "mlp"'),
    "unknown model option": (
        lambda t: recipe(t, {"student.model": {"source": "mlp", "hiden": 8}}),
        "has no option 'hiden' (did you mean \"hidden\"?)",
    ),
    "unknown objective": (lambda t: recipe(t, {"student.objective": {"name": "kdd"}}), 'did you mean "kd"'),
    "unknown objective option": (
        lambda t: recipe(t, {"teacher": TEACHER, "student.objective": {"name": "kd", "temprature": 2}}),
        "has no option 'temprature' (did you mean \"temperature\"?)",
    ),
    "distillation without a teacher": (lambda t: recipe(t, {"student.objective": KD}), "needs a teacher"),
    "untrained builtin teacher": (
        lambda t: recipe(t, {"teacher": {"model": {"source": "mlp"}}, "student.objective": KD}),
        "is built untrained",
    ),
    "transfer set without distillation": (
        lambda t: recipe(t, {"transfer": {"source": "mixup"}}),
        "a transfer set is only used when the student distills",
    ),
    "teacher and student with different classes": (
        lambda t: recipe(t, {"teacher": {"model": {"source": f"run:{saved_model(t, 3)}"}}, "student.objective": KD}),
        "predicts 3 classes but the data has 10",
    ),
    "layer path that does not exist": (
        lambda t: recipe(t, {"teacher": TEACHER, "student.objective": {"name": "fitnet", "student_layer": "featurs"}}),
        "no module 'featurs' in Classifier; closest: features",
    ),
    "teacher weights that do not match the teachers": (
        lambda t: recipe(t, {"teacher": TEACHER, "student.objective": KD, "student.teacher_weights": [1, 2]}),
        "student.teacher_weights has 2 weights for 1 teacher(s)",
    ),
    "run directory that already exists": (existing_run, "already exists; pass --resume to continue it or --overwrite"),
    "resume with nothing to resume": (lambda t: [*recipe(t), "--resume"], "nothing to resume"),
    "checkpoint from an incompatible version": (checkpoint_of_another_version, "has format 99, this protege reads"),
}


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gets_one_line_exit_2_and_loses_nothing(case, tmp_path, capsys):
    make, expected = CASES[case]
    torch.manual_seed(0)
    argv = make(tmp_path)
    capsys.readouterr()
    before = _snapshot(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("protege: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert expected in err, err
    after = _snapshot(tmp_path)
    assert {k: v for k, v in after.items() if k in before} == before  # nothing already written was changed


def test_the_catalogue_has_at_least_25_cases():
    assert len(CASES) >= 25


def test_a_disk_without_room_for_the_checkpoints_is_refused_before_training(tmp_path, capsys, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000))
    assert main(recipe(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "MB are free; free some space or set output_dir on another disk" in err and err.count("\n") == 1
    assert not (tmp_path / "run" / "student").exists()


def test_disk_full_while_writing_is_one_line_and_leaves_no_half_written_model(tmp_path, capsys, monkeypatch):
    import errno

    import protege.models.store as store

    real = store.save_file

    def full(state, filename, *args, **kwargs):
        if filename.endswith("model.safetensors") and "/.model." in filename:
            raise OSError(errno.ENOSPC, "No space left on device", filename)
        return real(state, filename, *args, **kwargs)

    monkeypatch.setattr(store, "save_file", full)
    assert main(recipe(tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.startswith("protege: error: disk full writing") and "continue with --resume" in err
    stage = tmp_path / "run" / "student"
    assert not (stage / "model").exists() and not list(stage.glob(".model.*"))
    assert (stage / "checkpoints" / "latest").is_file()  # the training itself is kept for --resume
