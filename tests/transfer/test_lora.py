"""LoRA through PEFT on a tiny BERT with a head: what trains, the merge on export, the adapter alone."""

import re

import pytest
import torch
from peft.tuners.lora import LoraLayer
from tests.transfer.helpers import BertClassifier, token_data

from protege.config import TrainConfig
from protege.engine import fit
from protege.errors import ConfigError
from protege.objectives import build_objective
from protege.transfer import build_strategy, load_trained_part, save_trained_part


def _train(epochs=2, **options):
    strategy = build_strategy("lora", {"r": 2, "alpha": 4, **options})
    config = TrainConfig(epochs=epochs, batch_size=16, lr=0.02)
    result = fit(BertClassifier(), token_data(), build_objective([("ce", {}, 1.0)]), config, strategy=strategy)
    return strategy, result


def test_adapters_and_head_train_the_backbone_stays_frozen():
    strategy = build_strategy("lora", {"r": 2})
    wrapped = strategy.prepare(BertClassifier())
    strategy.start_epoch(0)
    assert strategy.adapter_config["target_modules"] == ["query", "value"]  # PEFT's default for BERT
    trainable = {n for n, p in wrapped.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or ".modules_to_save." in n for n in trainable)
    assert sum("lora_A" in n for n in trainable) == 4  # query and value in 2 layers
    assert [g.name for g in strategy.split.groups] == ["head", "adapter", "backbone"]


def test_training_returns_a_plain_model_with_the_adapters_merged():
    _, result = _train()
    pretrained = BertClassifier().state_dict()
    model = result.model
    assert not any(isinstance(m, LoraLayer) for m in model.modules())
    assert set(model.state_dict()) == set(pretrained)
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, pretrained[k])}
    assert {"head.weight", "encoder.encoder.layer.0.attention.self.query.weight"} <= changed
    assert not any(".key." in k or "embeddings" in k or "intermediate" in k for k in changed)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def test_adapter_alone_reloads_onto_the_pretrained_backbone_exactly(tmp_path):
    strategy, result = _train()
    path = save_trained_part(strategy, result.model, tmp_path)
    assert path.name == "adapter.safetensors" and path.stat().st_size < 10_000
    reloaded = load_trained_part(BertClassifier(), path)
    x = token_data(32, seed=5).x
    result.model.eval(), reloaded.eval()
    with torch.no_grad():
        assert torch.equal(result.model(x), reloaded(x))


def test_named_targets_and_a_target_that_matches_nothing():
    _, result = _train(epochs=1, target_modules=["encoder.encoder.layer.1.output.dense"])
    pretrained = BertClassifier().state_dict()
    changed = {k for k, v in result.model.state_dict().items() if not torch.equal(v, pretrained[k])}
    assert changed == {"head.weight", "head.bias", "encoder.encoder.layer.1.output.dense.weight"}
    with pytest.raises(ConfigError, match="lora target_modules 'qeury' matches no module of BertClassifier"):
        build_strategy("lora", {"target_modules": ["qeury"]}).prepare(BertClassifier())


def test_a_model_without_linear_layers_outside_the_head_needs_named_targets():
    from protege.models.builtin import cnn1d

    with pytest.raises(ConfigError, match="has no linear layer outside its head; name target_modules"):
        build_strategy("lora", {}).prepare(cnn1d((40,), 3, width=4))


def test_an_adapter_with_a_layer_the_model_lacks_names_the_first_such_key(tmp_path):
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    from protege.errors import CheckpointError

    strategy, result = _train(epochs=1)
    path = save_trained_part(strategy, result.model, tmp_path)
    with safe_open(str(path), framework="pt") as handle:
        meta, tensors = handle.metadata(), {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    tensors["base_model.model.encoder.encoder.layer.7.attention.self.query.lora_A.weight"] = torch.zeros(2, 16)
    save_file(tensors, str(tmp_path / "bigger.safetensors"), metadata=meta)
    assert json.loads(meta["protege"])["kind"] == "lora"
    message = (f"{tmp_path / 'bigger.safetensors'} does not fit the model: unexpected "
               "'base_model.model.encoder.encoder.layer.7.attention.self.query.lora_A.weight'")  # fmt: skip
    with pytest.raises(CheckpointError, match=re.escape(message)):
        load_trained_part(BertClassifier(), tmp_path / "bigger.safetensors")
