"""The one-line errors of objectives built or set up wrongly: each names the objective, what is wrong
and what to give instead (the text is what a user reads, so it is checked whole)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from protege.errors import ConfigError
from protege.objectives import StepOutputs, build_objective
from protege.objectives.crd import CRD
from protege.objectives.hints import FitNet
from protege.objectives.self_distill import SelfDistillation
from protege.objectives.tinybert import TinyBERT, uniform_layer_map


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("attention", {"student_layers": ["a"]},
         "objective 'attention': attention needs student_layers and teacher_layers, two lists of the same length"),
        ("self_distill", {},
         "objective 'self_distill': self_distill needs layers: the shallow module paths that get auxiliary "
         "classifiers"),
        ("tinybert", {},
         "objective 'tinybert': give layer_map ([[student, teacher], ...]) or student_depth and teacher_depth"),
        ("tinybert", {"student_depth": 2},
         "objective 'tinybert': give layer_map ([[student, teacher], ...]) or student_depth and teacher_depth"),
        ("tinybert", {"layer_map": [[0]]},
         "objective 'tinybert': layer_map must be a list of [student_layer, teacher_layer] pairs"),
        ("tinybert", {"layer_map": [[0, 1]], "hidden_template": "encoder.layer"},
         "objective 'tinybert': layer template 'encoder.layer' needs '{}' where the layer number goes"),
        ("tinybert", {"student_depth": 3, "teacher_depth": 2},
         "objective 'tinybert': a uniform map needs 1 <= student_depth <= teacher_depth (got 3, 2)"),
    ],
)  # fmt: skip
def test_a_wrongly_built_objective_says_what_to_give(name, options, message):
    with pytest.raises(ConfigError) as caught:
        build_objective([(name, options, 1.0)])
    assert str(caught.value) == message


def test_uniform_layer_map_takes_every_nth_teacher_layer():
    """TinyBERT's g(m) = m·N/M: 4 of 12 layers learn from layers 3, 6, 9, 12 (0-based 2, 5, 8, 11)."""
    assert uniform_layer_map(4, 12) == [(0, 2), (1, 5), (2, 8), (3, 11)]
    assert uniform_layer_map(1, 1) == [(0, 0)]
    assert uniform_layer_map(3, 4) == [(0, 0), (1, 1), (2, 3)]


class Tiny(nn.Module):
    """A vector embedding (``features``), a sequence layer (``sequence``) and a head."""

    def __init__(self, width: int = 4):
        super().__init__()
        self.features = nn.Linear(3, width)
        self.sequence = nn.Identity()
        self.head = nn.Linear(width, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sequence(x.unsqueeze(1))
        return self.head(self.features(x))


def test_fitnet_refuses_layers_of_different_kinds():
    fitnet = FitNet(student_layer="features", teacher_layer="sequence")
    with pytest.raises(ConfigError) as caught:
        fitnet.setup(Tiny(), Tiny(), torch.randn(2, 3), 2)
    assert str(caught.value) == (
        "fitnet: student layer 'features' gives shape (4,) and teacher layer 'sequence' gives (1, 3); "
        "pick layers of the same kind"
    )


def test_fitnet_sizes_its_adapter_from_the_two_layers():
    fitnet = FitNet(student_layer="features", teacher_layer="features")
    fitnet.setup(Tiny(4), Tiny(6), torch.randn(2, 3), 2)
    assert isinstance(fitnet.adapter, nn.Linear)
    assert (fitnet.adapter.in_features, fitnet.adapter.out_features) == (4, 6)


def test_self_distillation_needs_a_vector_deep_layer_and_sizes_its_heads():
    objective = SelfDistillation(layers=["features"], deep_layer="sequence")
    with pytest.raises(ConfigError) as caught:
        objective.setup(Tiny(), None, torch.randn(2, 3), 2)
    assert str(caught.value) == (
        "self_distill: deep_layer 'sequence' gives shape (1, 3); it must be a vector per example "
        "(the penultimate embedding, 'features' on builtin models)"
    )
    objective = SelfDistillation(layers=["sequence"], deep_layer="features")
    objective.setup(Tiny(5), None, torch.randn(2, 3), 2)
    head = objective.heads["sequence"]
    assert head.bottleneck[0].in_features == 1  # the sequence layer's channels
    assert (head.classifier.in_features, head.classifier.out_features) == (5, 2)


def test_tinybert_needs_hidden_states():
    class Layered(Tiny):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Identity()])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(self.layers[0](x))

    objective = TinyBERT(layer_map=[[0, 0]], hidden_template="layers.{}", attention_template=None)
    with pytest.raises(ConfigError) as caught:
        objective.setup(Layered(), Layered(), torch.randn(2, 3), 2)
    assert str(caught.value) == (
        "tinybert: 'layers.0' and 'layers.0' must give hidden states (batch, tokens, width); got (2, 3) and (2, 3)"
    )

    class Sequence(Layered):  # the student gives hidden states, the teacher does not
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.layers[0](x.unsqueeze(1)).squeeze(1)

    objective = TinyBERT(layer_map=[[0, 0]], hidden_template="layers.{}", attention_template=None)
    with pytest.raises(ConfigError, match=r"got \(2, 1, 3\) and \(2, 3\)"):
        objective.setup(Sequence(), Layered(), torch.randn(2, 3), 2)


def test_crd_needs_two_examples_and_their_positions():
    crd = CRD(feat_dim=8, negatives=4)
    with pytest.raises(ConfigError) as caught:
        crd.setup(Tiny(), Tiny(), torch.randn(1, 3), 1)
    assert str(caught.value) == "crd needs at least 2 training examples to draw negatives from"
    crd.setup(Tiny(), Tiny(), torch.randn(2, 3), 2)  # two examples: one negative each
    out = StepOutputs(torch.zeros(2, 2), torch.zeros(2, dtype=torch.long))
    out.features, out.teacher_features = {"features": torch.randn(2, 4)}, {"features": torch.randn(2, 4)}
    with pytest.raises(ConfigError) as caught:
        crd(out)
    assert str(caught.value) == "crd needs each example's position in the training set; use a protege dataset"


def test_tinybert_maps_each_student_width_to_the_teachers():
    class Encoder(nn.Module):
        def __init__(self, width: int):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(3, width), nn.Linear(width, width)])

        def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, 5 tokens, 3) -> hidden states
            return self.layers[1](self.layers[0](x))

    objective = TinyBERT(layer_map=[[0, 1], [1, 1]], hidden_template="layers.{}", attention_template=None)
    objective.setup(Encoder(4), Encoder(6), torch.randn(2, 5, 3), 2)
    assert [(p.in_features, p.out_features) for p in objective.projections] == [(4, 6), (4, 6)]


def test_crd_fixes_z_after_the_first_batch_even_when_it_is_small():
    """Z is estimated once; a first estimate below 1 (embeddings far from the bank) is kept too."""
    crd = CRD(feat_dim=4, negatives=2, ce_weight=0.0)
    torch.manual_seed(0)
    crd.setup(Tiny(), Tiny(), torch.randn(2, 3), 3)
    out = StepOutputs(torch.zeros(3, 2), torch.zeros(3, dtype=torch.long))
    out.features, out.teacher_features = {"features": torch.randn(3, 4)}, {"features": torch.randn(3, 4)}
    out.index = torch.arange(3)
    with torch.no_grad():
        embedded = torch.nn.functional.normalize(crd.embed_student(out.features["features"]), dim=1)
        crd.memory_teacher.copy_(-embedded)  # every similarity −1: exp(−1/0.07)·3 ≈ 2e-6
    crd(out)
    first = crd.z_student.item()
    assert 0 < first < 1
    out.features = {"features": torch.randn(3, 4)}
    crd(out)
    assert crd.z_student.item() == first
