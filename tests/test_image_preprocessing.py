"""Preprocessing that follows the model, end to end: a timm model trained on an image folder records its
pretrained configuration's resize, crop and mean/std in its card, and ``protege predict`` (from the run and
from an exported file) on a raw image file gives the probabilities evaluation gave that example."""

import json

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from protege.cli import main
from protege.data.build import encode_examples, split_examples
from protege.evaluate import predict_logits
from protege.models import load_run_model
from protege.models.image_inputs import ModelInput, resolve_model_input
from protege.models.store import read_card
from protege.pipeline import load_recipe_data
from protege.recipe_reader import load_recipe


def _folder(root, size=(20, 26)):
    """train/ and test/ folders of two classes of noisy RGB images, bright and dark."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 10), ("test", 3)):
        for label, level in (("bright", 190), ("dark", 60)):
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(n):
                pixels = np.clip(rng.normal(level, 50, size=(*size, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny timm model (no weights: ``preprocess: pretrained`` follows its config all the same), 1 epoch."""
    tmp = tmp_path_factory.mktemp("images")
    recipe = {
        "name": "images",
        "seed": 0,
        "data": {"source": f"imagefolder:{_folder(tmp / 'pets')}", "val_fraction": 0.0},
        "student": {
            "model": {"source": "timm:test_resnet", "pretrained": False, "preprocess": "pretrained"},
            "train": {"epochs": 1, "batch_size": 10},
        },
        "evaluate": {"latency": False},
    }
    (tmp / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    assert main(["run", str(tmp / "recipe.yaml"), "-o", str(tmp / "run")]) == 0
    return tmp


def test_the_card_records_the_pretrained_preprocessing(trained):
    card = read_card(trained / "run" / "student" / "model")
    config = resolve_model_input("timm:test_resnet", {"preprocess": "pretrained"})
    assert card.preprocess["model_input"] == config.to_card()
    assert card.preprocess["image"] == {"size": [20, 26], "mode": "RGB"}
    assert card.input_shape == [3, 160, 160]


def test_predict_on_a_raw_file_gives_the_evaluation_probabilities(trained, capsys):
    recipe = load_recipe(trained / "run" / "config.yaml")
    data = load_recipe_data(recipe)
    model = load_run_model(f"run:{trained / 'run'}", None, None).module.eval()
    evaluated = torch.softmax(predict_logits(model, data.test), dim=1).double().numpy()
    # the test/ folder is the test split, its files in sorted order: bright 0-2, then dark 0-2
    position = int(np.flatnonzero(data.rows["test"].numpy() == 4)[0])
    file = trained / "pets" / "test" / "dark" / "1.png"
    assert main(["export", str(trained / "run"), "-f", "onnx", "-o", str(trained / "m.onnx")]) == 0
    for source in (trained / "run", trained / "m.onnx"):
        capsys.readouterr()
        assert main(["predict", str(source), str(file), "--json"]) == 0
        ranked = json.loads(capsys.readouterr().out)[0]["predictions"]
        predicted = {p["class"]: p["probability"] for p in ranked}
        expected = dict(zip(data.class_names, evaluated[position], strict=True))
        assert predicted == pytest.approx(expected, abs=1e-5), source


def test_the_log_says_what_was_applied(trained, monkeypatch):
    import protege.data.build

    messages = []
    monkeypatch.setattr(protege.data.build, "log", messages.append)
    load_recipe_data(load_recipe(trained / "run" / "config.yaml"))
    assert (
        "preprocessing from timm test_resnet's pretrained config: 160×160 bilinear, crop 0.95, "
        "mean [0.5, 0.5, 0.5], std [0.5, 0.5, 0.5]"
    ) in messages


def test_a_streamed_folder_is_resized_as_the_one_in_memory(tmp_path):
    root = _folder(tmp_path / "pets", size=(9, 12))
    view = ModelInput((16, 16), "bicubic", 0.875, None, None, "test")
    batches = []
    for load in ("memory", "stream"):
        examples = split_examples(f"imagefolder:{root}", {"load": load, "num_workers": 0}, val_fraction=0.0)
        data = encode_examples(examples, view)
        assert data.input_shape == (3, 16, 16) and data.preprocess["model_input"]["size"] == [16, 16]
        batches.append(data.test.__getitems__(list(range(len(data.test))))["x"])
    assert torch.allclose(batches[0], batches[1], atol=1e-6)


def test_a_grey_folder_reads_the_average_of_the_rgb_mean(tmp_path):
    root = tmp_path / "grey"
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for i in range(5):
            Image.new("L", (8, 8), 40 * i).save(root / label / f"{i}.png")
    view = resolve_model_input("timm:test_efficientnet", {"preprocess": {"size": 16}})
    data = encode_examples(split_examples(f"imagefolder:{root}", val_fraction=0.0), view)
    assert data.preprocess["model_input"]["mean"] == pytest.approx([float(np.mean(view.mean))])
