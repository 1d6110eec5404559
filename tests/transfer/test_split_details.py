"""The corners of finding a model's groups: timm's depths and block order, the covering path of a timm
group, which ModuleList holds the blocks, parameter order, modules without parameters, and the errors."""

from __future__ import annotations

import re

import pytest
import timm
import torch
from torch import nn

from protege.errors import ConfigError
from protege.models.builtin import mlp
from protege.transfer.split import _covering_path, closest_paths, find_head, split_model


def test_timm_groups_count_their_depth_from_the_head_and_list_blocks_bottom_up():
    split = split_model(timm.create_model("resnet18", pretrained=False, num_classes=3))
    assert [(g.name, g.depth) for g in split.groups] == [
        ("head", 0), ("layer4", 1), ("layer3", 2), ("layer2", 3), ("layer1", 4), ("stem", 5)
    ]  # fmt: skip
    assert split.block_paths == ["layer1", "layer2", "layer3", "layer4"]
    assert set(split.groups[0].params) == {"fc.weight", "fc.bias"}
    layer4 = {n for n in dict(split.groups[1].params)}
    assert layer4 and all(n.startswith("layer4.") for n in layer4) and "layer4.0.conv1.weight" in layer4
    assert all(n.startswith(("conv1.", "bn1.")) for n in split.groups[-1].params)
    convnext = split_model(timm.create_model("convnext_atto", pretrained=False, num_classes=3))
    assert [(g.name, g.depth) for g in convnext.groups[:2]] == [("head", 0), ("neck", 0)]
    assert convnext.groups[2].depth == 1 and "stem" not in convnext.block_paths


def test_the_covering_path_of_a_timm_group():
    assert _covering_path(["layer3.0.conv1.weight", "layer3.1.bn2.bias"], taken=set()) == "layer3"
    # a block grouped with the final norm: the path holding more than half of the names
    assert _covering_path(["blocks.3.attn.qkv.weight", "blocks.3.mlp.fc1.weight", "norm.weight"], set()) == "blocks.3"
    assert _covering_path(["stages.1.blocks.0.w", "stages.1.blocks.1.w"], taken={"stages.1.blocks"}) == "stages.1"
    assert _covering_path(["a.x.w", "b.y.w"], set()) == "group.a.x.w"
    # the deepest path wins, then the later name among equally deep ones
    assert _covering_path(["s.0.a.w", "s.0.b.w", "s.1.a.w", "s.1.b.w", "s.1.c.w"], set()) == "s"
    assert _covering_path(["p.q.w", "p.q.v", "r.w"], set()) == "p.q"
    # a lone parameter is named by its module, a top-level one by itself
    assert _covering_path(["blocks.0.norm.weight"], set()) == "blocks.0.norm"
    assert _covering_path(["cls_token"], set()) == "group.cls_token"


class _TwoLists(nn.Module):
    def __init__(self, small: int, large: int, single: int = 0):
        super().__init__()
        self.early = nn.ModuleList([nn.Linear(4, 4) for _ in range(small)])
        self.late = nn.ModuleList([nn.Linear(4, 4) for _ in range(large)])
        self.lone = nn.ModuleList([nn.Linear(4, 64)] * bool(single))
        self.head = nn.Linear(4, 2)


def test_blocks_are_the_children_of_the_largest_module_list_with_two_or_more():
    assert split_model(_TwoLists(2, 3)).block_paths == ["late.0", "late.1", "late.2"]
    assert split_model(_TwoLists(2, 2)).block_paths == ["early.0", "early.1"]  # a tie: the first
    # a one-block list is no list of blocks, however large
    assert split_model(_TwoLists(2, 2, single=1)).block_paths == ["early.0", "early.1"]


class _HeadFirst(nn.Module):
    def __init__(self):
        super().__init__()
        self.head = nn.Linear(8, 2)
        self.blocks = nn.ModuleList([nn.Linear(8, 8) for _ in range(2)])
        self.norm = nn.LayerNorm(8)


def test_a_head_defined_before_the_backbone_still_leaves_every_other_parameter_in_a_group():
    split = split_model(_HeadFirst())
    assert split.names == ["head", "neck", "blocks.1", "blocks.0"]
    assert set(split.groups[1].params) == {"norm.weight", "norm.bias"}
    everything = {n for g in split.groups for n in g.params}
    assert everything == {n for n, _ in _HeadFirst().named_parameters()}


def test_blocks_from_says_where_the_blocks_came_from():
    assert split_model(mlp((6,), 3, hidden=[8, 8]), blocks="features.*").blocks_from == "blocks 'features.*'"
    assert split_model(mlp((6,), 3, hidden=[8, 8])).blocks_from == "guessed from module paths"


def test_a_module_without_parameters_belongs_to_its_nearest_ancestors_group():
    model = nn.Module()
    model.stem = nn.Linear(4, 4)
    model.blocks = nn.ModuleList([nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4, affine=False)) for _ in range(2)])
    model.head = nn.Linear(4, 2)
    split = split_model(model)
    assert split.names == ["head", "blocks.1", "blocks.0", "stem"]
    assert split.group_of_module("blocks.1.1") == "blocks.1"
    assert split.group_of_module("blocks.0.1") == "blocks.0"
    assert split.group_of_module("stem") == "stem"
    assert split.group_of_module("nowhere") is None


def test_a_blocks_path_inside_the_head_or_matching_nothing_is_an_error():
    model = mlp((6,), 3, hidden=[8, 8])
    with pytest.raises(ConfigError, match=re.escape("blocks 'head' matches no module of Classifier; closest: ")):
        split_model(model, blocks="head")
    with pytest.raises(
        ConfigError, match=re.escape("blocks 'featurez' matches no module of Classifier; closest: features")
    ):
        split_model(model, blocks="featurez")


def test_a_container_path_inside_the_head_gives_no_blocks():
    model = nn.Module()
    model.features = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
    model.head = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(ConfigError, match=re.escape("blocks 'head' matches no module of Module")):
        split_model(model, head="head", blocks="head")
    assert split_model(model, head="head", blocks="features").block_paths == ["features.0", "features.1"]


def test_a_container_path_is_never_read_as_a_glob_whatever_its_letters():
    model = nn.Sequential()
    model.add_module("Xblocks", nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4)))
    model.add_module("head", nn.Linear(4, 2))
    assert split_model(model, blocks="Xblocks").block_paths == ["Xblocks.0", "Xblocks.1"]


class _Many(nn.Module):
    def __init__(self):
        super().__init__()
        for name in ("alpha", "beta", "gamma", "delta", "omega"):
            self.add_module(name, nn.Sequential(nn.Linear(2, 2)))


def test_errors_name_three_closest_paths_or_the_last_three_modules():
    assert closest_paths(_Many(), "alpah") == "alpha, alpha.0, gamma"
    assert closest_paths(_Many(), "zzzz") == "alpha, alpha.0, beta"  # nothing close: the first paths
    assert len(closest_paths(_Many(), "alpha.0").split(", ")) == 3
    message = (
        "cannot tell the head of _Many; set the strategy option head: <module path> "
        "(its last modules: gamma, delta, omega)"
    )
    with pytest.raises(ConfigError, match=re.escape(message)):
        find_head(_Many())


def test_a_head_given_as_the_empty_path_is_refused():
    with pytest.raises(ConfigError, match=re.escape("head '' is no module of Classifier")):
        find_head(mlp((6,), 3, hidden=[8]), "")


def test_split_groups_keep_their_tensors():
    model = _HeadFirst()
    split = split_model(model)
    assert split.groups[1].params["norm.weight"] is model.norm.weight
    assert split.groups[0].size == 8 * 2 + 2 and torch.is_tensor(split.groups[0].params["head.weight"])
