"""recipes/images.yaml end to end at a tiny size: scikit-learn's digits written as image folders, a timm
ResNet-18 pretrained on digits 0-4 by benchmarks/pretrain_backbone.py, fine-tuned to digits 5-9 and
distilled into a MobileNetV3, each model reading the images as its card says."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from protege.data.digits_folder import write_digits_folders
from protege.models.store import read_card
from protege.pipeline import run_recipe
from protege.recipe_reader import load_recipe

ROOT = Path(__file__).resolve().parents[1]


def test_the_digits_folders_hold_every_bundled_image(tmp_path):
    from sklearn.datasets import load_digits

    folders = write_digits_folders(tmp_path, scale=2)
    counts = {half: len(list(folder.rglob("*.png"))) for half, folder in folders.items()}
    targets = load_digits().target
    assert counts == {"first": int((targets < 5).sum()), "second": int((targets >= 5).sum())}
    assert sorted(p.name for p in folders["second"].iterdir()) == ["5", "6", "7", "8", "9"]
    from PIL import Image

    with Image.open(next(folders["first"].rglob("*.png"))) as image:
        assert (image.mode, image.size) == ("L", (16, 16))


@pytest.mark.slow
def test_the_image_recipe_transfers_a_pretrained_backbone_and_distils_it(tmp_path):
    folders = write_digits_folders(tmp_path / "digits")
    pretrained = tmp_path / "pretrained"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "pretrain_backbone.py"), "--data", str(folders["first"]),
         "--out", str(pretrained), "--epochs", "2"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "PROTEGE_QUIET": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    weights = pretrained / "student" / "model" / "model.safetensors"
    recipe = load_recipe(
        ROOT / "recipes" / "images.yaml",
        [f"data.source=imagefolder:{folders['second']}", f"teacher.model.weights={weights}",
         "teacher.train.epochs=2", "student.train.epochs=1", "student.baseline=false", "evaluate.html=false"],
    )  # fmt: skip
    result = run_recipe(recipe, tmp_path / "run")
    models = result.report["models"]
    assert models["teacher"]["accuracy"] > 0.6  # five classes: the pretrained backbone carried over
    teacher = read_card(tmp_path / "run" / "teacher" / "model").preprocess["model_input"]
    student = read_card(tmp_path / "run" / "student" / "model").preprocess["model_input"]
    assert read_card(weights.parent).preprocess["model_input"]["size"] == teacher["size"] == student["size"] == [16, 16]
    assert (teacher["interpolation"], teacher["crop_pct"]) == (student["interpolation"], student["crop_pct"])
    assert teacher["mean"] == pytest.approx([0.485, 0.456, 0.406])  # resnet18's pretrained config: ImageNet
