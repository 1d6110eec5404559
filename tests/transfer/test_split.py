"""Finding the head, the blocks and the stem by module path, for builtin, timm and torchvision models."""

import pytest
import timm
import torch
import torchvision
from torch import nn

from protege.errors import ConfigError
from protege.models.builtin import mlp, resnet
from protege.transfer.split import find_head, split_model


def _layout(split):
    return [(g.name, g.depth) for g in split.groups]


def test_builtin_resnet_groups_from_the_head_down():
    split = split_model(resnet((3, 8, 8), 3, width=4, blocks=[1, 1]))
    assert split.head_path == "head"
    assert _layout(split) == [("head", 0), ("features.4", 1), ("features.3", 2), ("features.1", 3), ("features.0", 4)]
    model_params = {n for n, _ in resnet((3, 8, 8), 3, width=4, blocks=[1, 1]).named_parameters()}
    assert set().union(*(g.params for g in split.groups)) == model_params  # every parameter, once


def test_blocks_glob_matches_one_path_component_and_the_rest_is_stem():
    model = mlp((6,), 3, hidden=[8, 8, 8])
    split = split_model(model, blocks="features.[23]")
    assert _layout(split) == [("head", 0), ("features.3", 1), ("features.2", 2), ("stem", 3)]
    assert list(split.groups[-1].params) == ["features.1.linear.weight", "features.1.linear.bias"]


def test_blocks_as_a_container_path_takes_its_children():
    split = split_model(mlp((6,), 3, hidden=[8, 8]), blocks="features")
    assert split.block_paths == ["features.1", "features.2"]


def test_timm_models_use_their_group_matcher():
    split = split_model(timm.create_model("resnet18", pretrained=False, num_classes=3))
    assert split.head_path == "fc" and split.blocks_from == "timm group_matcher"
    assert split.names == ["head", "layer4", "layer3", "layer2", "layer1", "stem"]
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=3, depth=2, img_size=32)
    assert split_model(vit).names == ["head", "blocks.1", "blocks.0", "stem"]


def test_torchvision_models_fall_back_to_top_level_children():
    model = torchvision.models.resnet18(weights=None, num_classes=3)
    split = split_model(model, head="fc")
    assert split.names == ["head", "layer4", "layer3", "layer2", "layer1", "bn1", "conv1"]


class _Encoder(nn.Module):
    """A transformer-like backbone: embeddings, a ModuleList of layers, a final norm; then a head."""

    def __init__(self):
        super().__init__()
        self.embeddings = nn.Embedding(20, 8)
        self.layer = nn.ModuleList([nn.Linear(8, 8) for _ in range(3)])
        self.norm = nn.LayerNorm(8)
        self.head = nn.Linear(8, 2)


def test_largest_module_list_gives_blocks_with_stem_and_neck():
    split = split_model(_Encoder())
    assert _layout(split) == [("head", 0), ("neck", 0), ("layer.2", 1), ("layer.1", 2), ("layer.0", 3), ("stem", 4)]


def test_head_from_timm_get_classifier_or_option():
    model = timm.create_model("resnet18", pretrained=False, num_classes=3)
    assert find_head(model) == "fc"
    assert find_head(_Encoder(), "layer.2") == "layer.2"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"head": "fx"}, "head 'fx' is no module of ResNet; closest: fc"),
        ({"head": "fc", "blocks": "layers.*"}, "blocks 'layers.*' matches no module of ResNet; closest: layer"),
    ],
)
def test_a_split_that_matches_nothing_is_an_error_naming_the_closest_paths(options, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("*", r"\*")):
        split_model(torchvision.models.resnet18(weights=None), **options)


def test_a_model_without_a_known_head_asks_for_the_option():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    with pytest.raises(ConfigError, match="set the strategy option head"):
        split_model(model)
    assert split_model(model, head="1").names == ["head", "stem"]
    assert torch.equal(split_model(model, head="1").groups[0].params["1.weight"], model[1].weight)


def test_timm_classifier_inside_a_larger_head_is_the_head_and_its_norm_the_neck():
    model = timm.create_model("convnext_atto", pretrained=False, num_classes=3)
    split = split_model(model)
    assert split.head_path == "head.fc"
    assert set(split.groups[1].params) == {"head.norm.weight", "head.norm.bias"} and split.groups[1].name == "neck"


def test_a_wrapped_hugging_face_encoder_splits_at_its_layers():
    from tests.transfer.helpers import BertClassifier

    split = split_model(BertClassifier())
    assert split.names == ["head", "encoder.encoder.layer.1", "encoder.encoder.layer.0", "stem"]
    assert all(name.startswith("encoder.embeddings.") for name in split.groups[-1].params)
