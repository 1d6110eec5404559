"""TinyBERT-style transformer-layer distillation (Jiao et al. 2020) on tiny Hugging Face encoders."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from transformers import BertConfig, BertModel

from protege.config import TrainConfig
from protege.data.dataset import ArrayDataset
from protege.engine import fit
from protege.errors import ModelError
from protege.objectives import StepOutputs, build_objective
from protege.objectives.tinybert import attention_loss, uniform_layer_map


class TinyEncoderClassifier(nn.Module):
    """A BERT encoder + mean pooling + linear head over token ids (0 is padding)."""

    def __init__(self, layers: int, width: int, heads: int, attn: str = "eager"):
        super().__init__()
        config = BertConfig(
            vocab_size=50,
            hidden_size=width,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            intermediate_size=2 * width,
            max_position_embeddings=16,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
        )
        config._attn_implementation = attn
        self.encoder = BertModel(config)
        self.head = nn.Linear(width, 2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = (ids != 0).long()
        hidden = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        pooled = (hidden * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)
        return self.head(pooled)


def test_uniform_map_follows_the_paper():
    assert uniform_layer_map(4, 12) == [(0, 2), (1, 5), (2, 8), (3, 11)]
    assert uniform_layer_map(2, 2) == [(0, 0), (1, 1)]
    with pytest.raises(ValueError, match="student_depth <= teacher_depth"):
        uniform_layer_map(3, 2)


def test_attention_and_hidden_losses_match_eq_7_and_8_by_hand():
    torch.manual_seed(0)
    objective = build_objective(
        [("tinybert", {"layer_map": [[0, 1]], "hidden_template": "h{}", "attention_template": "a{}:1"}, 1.0)]
    ).parts[0]
    objective.projections.append(nn.Linear(4, 6))
    h_s, h_t = torch.randn(2, 3, 4), torch.randn(2, 3, 6)
    a_s, a_t = torch.softmax(torch.randn(2, 2, 3, 3), -1), torch.softmax(torch.randn(2, 2, 3, 3), -1)
    out = StepOutputs(torch.zeros(2, 2), torch.tensor([0, 1]), torch.zeros(2, 2))
    out.features, out.teacher_features = {"h0": h_s, "a0:1": a_s}, {"h1": h_t, "a1:1": a_t}
    terms = objective(out)
    projection = objective.projections[0]
    torch.testing.assert_close(terms["hidden"], ((projection(h_s) - h_t) ** 2).mean())
    torch.testing.assert_close(terms["attention"], ((a_s - a_t) ** 2).mean())
    # different head counts: each side averaged over its heads first
    torch.testing.assert_close(attention_loss(a_s, a_t[:, :1]), F.mse_loss(a_s.mean(1), a_t[:, 0]))


def _token_data(n=48):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1, 50, (n, 8), generator=g)
    ids[::3, 6:] = 0  # some padding
    return ArrayDataset(ids, (ids[:, 0] > 25).long())


def test_a_tiny_bert_student_learns_from_a_deeper_teacher_through_mapped_layers():
    torch.manual_seed(0)
    teacher, student = TinyEncoderClassifier(4, 16, 4), TinyEncoderClassifier(2, 8, 2)
    options = {"student_depth": 2, "teacher_depth": 4, "hidden_template": "encoder.encoder.layer.{}"}
    options["attention_template"] = "encoder.encoder.layer.{}.attention.self:1"
    objective = build_objective([("tinybert", options, 1.0), ("kd", {"temperature": 2.0}, 1.0)])
    assert objective.student_layers[:2] == ("encoder.encoder.layer.0", "encoder.encoder.layer.1")
    result = fit(student, _token_data(), objective, TrainConfig(epochs=3, batch_size=16, lr=0.01), teacher=teacher)
    assert result.teacher_mode == "cached (memory)"
    assert result.history[-1]["train_hidden"] < result.history[0]["train_hidden"]
    assert all(not m._forward_hooks for m in [*student.modules(), *teacher.modules()])


def test_sdpa_attention_gives_no_probabilities_and_the_error_says_what_to_do():
    torch.manual_seed(0)
    teacher, student = TinyEncoderClassifier(2, 8, 2, attn="sdpa"), TinyEncoderClassifier(2, 8, 2, attn="sdpa")
    options = {"layer_map": [[0, 0]], "hidden_template": "encoder.encoder.layer.{}"}
    options["attention_template"] = "encoder.encoder.layer.{}.attention.self:1"
    with pytest.raises(ModelError, match="attn_implementation='eager'"):
        fit(
            student,
            _token_data(),
            build_objective([("tinybert", options, 1.0)]),
            TrainConfig(epochs=1),
            teacher=teacher,
        )
