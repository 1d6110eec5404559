"""Gradient checkpointing after frozen embeddings: non-reentrant keeps the later layers' gradients,
reentrant would lose them without a word."""

import warnings

import pytest
import torch
from tests.transfer.helpers import BertClassifier, token_data
from torch import nn

from protege.transfer import build_strategy
from protege.transfer.checkpointing import enable_gradient_checkpointing


class _Tower(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.embeddings = nn.Embedding(10, 8)
        self.layers = nn.ModuleList([nn.Sequential(nn.Linear(8, 8), nn.Tanh()) for _ in range(3)])
        self.head = nn.Linear(8, 2)

    def forward(self, ids):
        h = self.embeddings(ids).mean(1)
        for layer in self.layers:
            h = layer(h)
        return self.head(h)


def _layer_grads(use_reentrant):
    model = _Tower()
    model.embeddings.weight.requires_grad_(False)
    paths = [f"layers.{i}" for i in range(3)]
    if use_reentrant is not None:
        enable_gradient_checkpointing(model, paths, use_reentrant=use_reentrant)
    model.train()
    logits = model(torch.randint(0, 10, (4, 5), generator=torch.Generator().manual_seed(1)))
    if logits.requires_grad:
        logits.sum().backward()
    return logits.detach(), [model.layers[i][0].weight.grad for i in range(3)]


def test_non_reentrant_checkpointing_keeps_gradients_after_frozen_embeddings():
    plain_logits, plain = _layer_grads(None)
    logits, grads = _layer_grads(False)
    assert torch.equal(logits, plain_logits)
    assert all(g is not None and torch.allclose(g, p) for g, p in zip(grads, plain, strict=True))


def test_reentrant_checkpointing_would_have_lost_them():
    with pytest.warns(UserWarning, match="None of the inputs have requires_grad=True"):
        _, grads = _layer_grads(True)
    assert all(g is None for g in grads)


def test_strategy_option_on_a_hugging_face_encoder_with_frozen_embeddings():
    model = BertClassifier()
    strategy = build_strategy("finetune", {"gradient_checkpointing": True})
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # the current switch, not the deprecated alias
        strategy.prepare(model)
    assert model.encoder.is_activation_checkpointing  # the model's own switch, not a wrapper of ours
    model.encoder.embeddings.requires_grad_(False)
    model.train()
    calls = []
    model.encoder.encoder.layer[0].attention.self.query.register_forward_hook(lambda *_: calls.append(1))
    model(token_data(4).x).sum().backward()
    assert len(calls) == 2  # run once forward, once more in the backward pass: checkpointing is on
    assert model.encoder.encoder.layer[0].attention.self.query.weight.grad is not None
    assert model.encoder.embeddings.word_embeddings.weight.grad is None
