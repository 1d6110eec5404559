"""What each strategy hands the optimizer and the loop, value by value: weight decay per group, the
schedule in words, the dry run's rows, module modes in a frozen backbone, and LoRA's options inside PEFT."""

from __future__ import annotations

import pytest
import torch
from peft.tuners.lora import LoraLayer
from tests.transfer.helpers import BertClassifier
from torch import nn

from protege.models.builtin import mlp
from protege.transfer import build_strategy
from protege.transfer.base import group_rows


def _prepared(name: str, options: dict | None = None, model: nn.Module | None = None):
    torch.manual_seed(0)
    strategy = build_strategy(name, options or {})
    strategy.prepare(model if model is not None else mlp((6,), 3, hidden=[8, 8]))
    strategy.start_epoch(0)
    return strategy


def test_weights_decay_and_biases_do_not_with_each_groups_parameters_by_shape():
    strategy = _prepared("finetune", {"backbone_lr_scale": 0.5})
    groups = {g["name"]: g for g in strategy.param_groups(0.1, 0.05)}
    for name, group in groups.items():
        assert group["weight_decay"] == (0.0 if name.endswith(".no_decay") else 0.05)
        assert all(p.ndim <= 1 for p in group["params"]) == name.endswith(".no_decay")
        assert group["lr"] == pytest.approx(0.1 if name.startswith("head") else 0.05)
    every = [p for g in groups.values() for p in g["params"]]
    assert len(every) == len(list(strategy.split.groups[0].params.values())) + sum(
        len(g.params) for g in strategy.split.groups[1:]
    )


def test_l2sp_replaces_weight_decay_in_every_group():
    strategy = _prepared("l2sp")
    assert {g["weight_decay"] for g in strategy.param_groups(0.1, 0.05)} == {0.0}


def test_the_schedule_in_words_says_frozen_all_epochs_or_the_first_epoch():
    assert _prepared("linear_probe").schedule(3) == {
        "head": "all epochs",
        "features.2": "frozen",
        "features.1": "frozen",
    }
    assert _prepared("gradual_unfreeze").schedule(3) == {
        "head": "all epochs",
        "features.2": "from epoch 2",
        "features.1": "from epoch 3",
    }


def test_dry_run_rows_count_parameters_and_trainable_ones_in_the_first_epoch():
    strategy = _prepared("gradual_unfreeze", {"lr_decay": 0.5})
    rows = group_rows(strategy, 0.1, 2)
    sizes = {g.name: g.size for g in strategy.split.groups}
    assert rows == [
        ("head", sizes["head"], sizes["head"], pytest.approx(0.1), "all epochs"),
        ("features.2", sizes["features.2"], 0, pytest.approx(0.05), "from epoch 2"),
        ("features.1", sizes["features.1"], 0, pytest.approx(0.025), "frozen"),
    ]


class _Backbone(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Dropout(0.5))
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.features(x))


@pytest.mark.parametrize(("policy", "batchnorm_trains"), [("train", True), ("frozen_stats", False), ("frozen", False)])
def test_a_probes_frozen_backbone_keeps_dropout_off_and_batchnorm_as_the_policy_says(policy, batchnorm_trains):
    model = _Backbone()
    strategy = build_strategy("linear_probe", {"cache_features": False, "batchnorm": policy})
    strategy.prepare(model)
    model.train()
    strategy.start_epoch(1)
    assert not model.features[2].training and not model.features[0].training
    assert model.features[1].training is batchnorm_trains
    # the head and the model itself train: timm's forward_head reads the model's own flag for its dropout
    assert model.head.training and model.training


def test_a_probe_caches_features_unless_told_not_to():
    from protege.transfer.base import StrategyHook
    from protege.transfer.feature_cache import CachedFeaturesProbe

    assert type(build_strategy("linear_probe", {}).as_hook()) is CachedFeaturesProbe
    assert type(build_strategy("linear_probe", {"cache_features": False}).as_hook()) is StrategyHook


def test_lora_rank_scale_and_dropout_reach_the_adapters():
    strategy = build_strategy("lora", {"r": 4, "alpha": 2, "dropout": 0.25, "target_modules": ["query"]})
    wrapped = strategy.prepare(BertClassifier())
    layers = [m for m in wrapped.modules() if isinstance(m, LoraLayer)]
    assert len(layers) == 2  # the query of each of the two layers
    for layer in layers:
        assert layer.r["default"] == 4
        assert layer.scaling["default"] == pytest.approx(2 / 4)
        assert layer.lora_dropout["default"].p == 0.25
        assert layer.lora_A["default"].weight.shape == (4, 16)
    assert strategy.adapter_config == {"r": 4, "lora_alpha": 2, "lora_dropout": 0.25, "target_modules": ["query"],
                                       "modules_to_save": ["head"]}  # fmt: skip
    strategy.start_epoch(0)
    frozen = {n for n, p in wrapped.named_parameters() if not p.requires_grad}
    assert frozen and all("lora_" not in n and "modules_to_save" not in n for n in frozen)
