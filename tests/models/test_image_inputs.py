"""A timm or torchvision model's input images: read from the library's own pretrained configuration (nothing
downloaded), changed by the recipe, and applied exactly as the library's eval transform would."""

import pytest
import torch

from protege.errors import DataError, ModelError
from protege.models.image_inputs import IMAGENET, ModelInput, resolve_model_input


def test_timm_config_is_resolve_data_config_of_the_pretrained_cfg():
    import timm
    from timm.data import resolve_data_config

    model = timm.create_model("test_resnet", pretrained=False)
    expected = resolve_data_config({}, model=model)
    view = resolve_model_input("timm:test_resnet", {"preprocess": "pretrained"})
    assert (3, *view.size) == expected["input_size"]
    assert (view.interpolation, view.crop_pct) == (expected["interpolation"], expected["crop_pct"])
    assert (view.mean, view.std) == (tuple(expected["mean"]), tuple(expected["std"]))
    assert view.origin == "timm test_resnet's pretrained config"
    assert view.describe() == "160×160 bilinear, crop 0.95, mean [0.5, 0.5, 0.5], std [0.5, 0.5, 0.5]"


def test_torchvision_config_is_the_default_weights_transforms():
    view = resolve_model_input("torchvision:resnet18", {"preprocess": "pretrained"})
    assert view.size == (224, 224) and view.resize == 256 and view.interpolation == "bilinear"
    assert (view.mean, view.std) == IMAGENET
    assert view.describe() == "224×224 bilinear, crop 0.875, ImageNet mean/std"


@pytest.mark.parametrize(
    ("options", "follows"),
    [
        ({}, True),  # pretrained weights (the default) come with their preprocessing
        ({"weights": "backbone.safetensors", "pretrained": False}, True),
        ({"pretrained": False}, False),  # trained from scratch: the data as it is
        ({"pretrained": False, "preprocess": "pretrained"}, True),
        ({"preprocess": "none"}, False),
    ],
)
def test_when_a_model_asks_for_its_pretrained_preprocessing(options, follows):
    assert (resolve_model_input("timm:test_resnet", options) is not None) is follows


def test_builtin_models_ask_for_nothing():
    assert resolve_model_input("cnn2d", {"preprocess": "pretrained"}) is None


def test_a_recipe_changes_some_values_and_the_origin_says_which():
    options = {"pretrained": False, "preprocess": {"size": [24, 32], "crop_pct": 1}}
    view = resolve_model_input("timm:test_resnet", options)
    assert view.size == (24, 32) and view.crop_pct == 1.0 and view.interpolation == "bilinear"
    assert view.origin == "timm test_resnet's pretrained config, size, crop_pct from the recipe"


def test_resize_and_crop_match_torchvision_image_classification():
    """The geometry is torchvision's eval transform (ImageClassification) to the last value; the model
    then normalises as that transform does."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms._presets import ImageClassification

    image = torch.rand(3, 40, 52)
    reference = ImageClassification(crop_size=32, resize_size=36, interpolation=InterpolationMode.BILINEAR)(image)
    view = ModelInput((32, 32), "bilinear", 32 / 36, IMAGENET[0], IMAGENET[1], "test")
    assert view.resize == 36
    mean, std = torch.tensor(view.mean).view(3, 1, 1), torch.tensor(view.std).view(3, 1, 1)
    assert torch.allclose((view.resize_images(image) - mean) / std, reference, atol=1e-6)


def test_one_image_and_a_batch_are_resized_alike():
    view = ModelInput((16, 16), "bicubic", 0.875, None, None, "test")
    batch = torch.rand(5, 1, 9, 12)
    one = torch.stack([view.resize_images(image) for image in batch])
    assert torch.equal(view.resize_images(batch), one)
    assert view.resize_images(batch).min() >= 0 and view.resize_images(batch).max() <= 1


def test_grey_images_read_the_average_of_rgb_values_and_other_counts_are_refused():
    view = ModelInput((8, 8), "bilinear", 1.0, (0.2, 0.4, 0.6), (0.1, 0.2, 0.3), "test")
    grey = view.for_channels(1, "m")
    assert grey.mean == pytest.approx((0.4,)) and grey.std == pytest.approx((0.2,))
    with pytest.raises(DataError, match="normalises 3 channels"):
        view.for_channels(4, "m")


def test_card_round_trip():
    view = resolve_model_input("timm:test_resnet", {"preprocess": "pretrained"})
    assert ModelInput.from_card(view.to_card()) == view


def test_the_model_normalises_its_inputs_itself():
    from protege.models import build_model

    preprocess = {"model_input": {**ModelInput((16, 16), "bilinear", 1.0, None, None, "t").to_card()}}
    options = {"pretrained": False, "preprocess": {"size": 16, "mean": [0.5], "std": [0.25]}}
    built = build_model("timm:test_resnet", options, (1, 16, 16), ["a", "b"], preprocess)
    assert built.card.preprocess["model_input"]["mean"] == [0.5]
    module = built.module.eval()
    x = torch.rand(2, 1, 16, 16)
    plain = module.head(module.backbone((x - 0.5) / 0.25))
    assert torch.allclose(module(x), plain)
    assert "input_mean" not in module.state_dict()  # the card carries it; old weights still load


def test_an_unknown_option_names_itself():
    with pytest.raises(ModelError, match=r"preprocess\.interpolation: Input should be"):
        resolve_model_input("timm:test_resnet", {"preprocess": {"interpolation": "lanczos"}})


def test_a_weights_file_a_protege_run_saved_brings_its_cards_preprocessing(tmp_path):
    from protege.models import build_model, save_model

    view = ModelInput((16, 16), "bicubic", 0.95, IMAGENET[0], IMAGENET[1], "timm test_resnet's pretrained config")
    options = {"pretrained": False, "preprocess": {"size": 16, "interpolation": "bicubic"}}
    built = build_model("timm:test_resnet", options, (3, 16, 16), ["a", "b"],
                        {"model_input": view.to_card()})  # fmt: skip
    save_model(built.module, built.card, tmp_path / "model")
    weights = str(tmp_path / "model" / "model.safetensors")
    found = resolve_model_input("timm:test_resnet", {"weights": weights})
    assert found.key() == view.key() and found.origin == f"the card of {tmp_path / 'model'} (its weights)"
    assert found.mean == (0.5, 0.5, 0.5)  # the saved model's own normalisation (test_resnet's config)
    assert resolve_model_input("timm:test_resnet", {"weights": weights, "preprocess": {"size": 24}}).size == (24, 24)
