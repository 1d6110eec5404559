"""The options every strategy shares reach what they steer: the head and blocks of the split, the BatchNorm
policy, gradient checkpointing (block by block on a plain model, LoRA included), LoRA's own head; and a
strategy that refuses its options in its constructor is a one-line error."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from protege.errors import ConfigError
from protege.models.builtin import mlp
from protege.models.taps import resolve_module
from protege.transfer import STRATEGIES, Strategy, build_strategy


class _Net(nn.Module):
    """A head the split cannot find by itself (``fc``) and blocks under ``layers``."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Linear(6, 8)
        self.layers = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8))
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc(self.layers(self.stem(x)))


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_takes_the_common_options(name):
    strategy = build_strategy(name, {"head": "fc", "blocks": "layers.*", "batchnorm": "frozen",
                                     "gradient_checkpointing": True})  # fmt: skip
    assert (strategy.head, strategy.blocks, strategy.batchnorm, strategy.gradient_checkpointing) == (
        "fc", "layers.*", "frozen", True
    )  # fmt: skip


def test_head_and_blocks_options_steer_the_split():
    strategy = build_strategy("finetune", {"head": "fc", "blocks": "layers.*"})
    strategy.prepare(_Net())
    assert strategy.split.head_path == "fc" and strategy.split.block_paths == ["layers.0", "layers.1", "layers.2"]
    assert strategy.split.names == ["head", "layers.2", "layers.0", "stem"]
    with pytest.raises(ConfigError, match="cannot tell the head of _Net"):
        build_strategy("finetune", {}).prepare(_Net())


def test_a_strategy_used_before_prepare_says_so():
    with pytest.raises(RuntimeError, match=r"^call prepare\(model\) before using the strategy$"):
        build_strategy("finetune", {}).param_groups(0.1, 0.0)


def _gradients(model, x):
    model.zero_grad()
    model(x).square().sum().backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_gradient_checkpointing_wraps_each_block_and_changes_no_gradient():
    x = torch.randn(5, 6, generator=torch.Generator().manual_seed(1))
    plain = _gradients(_Net(), x)
    model = _Net()
    build_strategy("finetune", {"head": "fc", "blocks": "layers.*", "gradient_checkpointing": True}).prepare(model)
    assert all(hasattr(resolve_module(model, f"layers.{i}").forward, "__wrapped__") for i in (0, 2))
    assert not hasattr(model.stem.forward, "__wrapped__")
    checkpointed = _gradients(model, x)
    assert plain.keys() == checkpointed.keys()
    assert all(torch.allclose(plain[n], checkpointed[n]) for n in plain)


def test_lora_checkpoints_the_guessed_blocks_and_reads_its_head_option():
    model = mlp((6,), 3, hidden=[8, 8])
    strategy = build_strategy("lora", {"r": 2, "gradient_checkpointing": True})
    wrapped = strategy.prepare(model)
    assert all(hasattr(resolve_module(model, f"features.{i}").forward, "__wrapped__") for i in (1, 2))
    assert strategy.split.head_path == "head" and strategy.split.block_paths == []
    assert strategy.split.blocks_from == "adapters on features.1.linear, features.2.linear"
    x = torch.randn(4, 6)
    wrapped(x).sum().backward()  # the checkpointed blocks still pass gradients to the adapters
    assert all(p.grad is not None for n, p in wrapped.named_parameters() if "lora_B" in n)
    fc = build_strategy("lora", {"head": "fc", "target_modules": ["layers.0"]})
    fc.prepare(_Net())
    assert fc.split.head_path == "fc" and fc.adapter_config["modules_to_save"] == ["fc"]


def test_lora_on_a_model_without_linear_layers_names_the_model():
    from protege.models.builtin import cnn1d

    model = cnn1d((40,), 3, width=4)
    message = f"lora: {type(model).__name__} has no linear layer outside its head; name target_modules"
    with pytest.raises(ConfigError, match=re.escape(message)):
        build_strategy("lora", {}).prepare(model)


def test_a_constructor_that_refuses_its_options_is_a_one_line_error():
    class Picky(Strategy):
        name = "picky"

        def __init__(self, size: int = 1, **common):
            super().__init__(**common)
            if size > 3:
                raise ValueError("size above 3 needs a larger model")

    STRATEGIES.register("picky")(Picky)
    try:
        with pytest.raises(ConfigError, match=re.escape("strategy 'picky': size above 3 needs a larger model")):
            build_strategy("picky", {"size": 4})
    finally:
        del STRATEGIES._entries["picky"]
