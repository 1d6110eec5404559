"""Tiny transformer classifiers for the strategy tests: a BERT with a head, built from a small config."""

import torch
from torch import nn
from transformers import BertConfig, BertModel

from protege.data.dataset import ArrayDataset


class BertClassifier(nn.Module):
    """A Hugging Face encoder under ``encoder`` (its own module paths) and a linear ``head`` on [CLS]."""

    def __init__(self, num_classes: int = 2, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        config = BertConfig(
            vocab_size=40,
            hidden_size=16,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=32,
            max_position_embeddings=16,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
        )
        self.encoder = BertModel(config, add_pooling_layer=False)
        self.head = nn.Linear(16, num_classes)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(input_ids=input_ids).last_hidden_state[:, 0])


def token_data(n: int = 64, seed: int = 0) -> ArrayDataset:
    """Sequences of 8 token ids; the class says whether token 7 occurs."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(8, 40, (n, 8), generator=g)
    y = torch.arange(n) % 2
    x[y == 1, 3] = 7
    return ArrayDataset(x, y)
