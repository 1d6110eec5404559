"""The first cases: recipes, data files, model sources, objectives and run directories."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tests.catalogue import csv_data, npz_data, recipe, saved_model, written

from protege.cli import main


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
