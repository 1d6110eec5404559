"""Each objective's named terms: every weight, temperature and option reaches the term it scales, the
hard-label part reads only the labelled examples, and a zero weight drops its term. Values come from
the plain equations in tests/objectives/reference.py."""

from __future__ import annotations

import pytest
import torch
from tests.objectives import reference
from torch import nn

from protege.models.builtin import mlp
from protege.objectives import StepOutputs, build_objective
from protege.objectives.hints import AttentionTransfer, FitNet
from protege.objectives.self_distill import AuxiliaryHead, SelfDistillation
from protege.objectives.tinybert import TinyBERT

BATCH, CLASSES = 7, 5


def _narrower_mask(batch) -> torch.Tensor:
    """A step's mask narrower than the targets (DER's replayed examples, unlearning's forgotten ones):
    the labelled examples less the first and the third."""
    labeled = batch["target"] >= 0
    labeled[[0, 2]] = False
    return labeled


def _close(actual: torch.Tensor, expected: torch.Tensor, rtol: float = 1e-4) -> None:
    torch.testing.assert_close(actual.double(), expected.double(), rtol=rtol, atol=1e-6)


@pytest.fixture
def batch() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    target = torch.randint(0, CLASSES, (BATCH,), generator=generator)
    target[[1, 4]] = -1  # two transfer-set examples
    return {
        "student": torch.randn(BATCH, CLASSES, generator=generator) * 2,
        "teacher": torch.randn(BATCH, CLASSES, generator=generator) * 2,
        "target": target,
        "s_embedding": torch.randn(BATCH, 4, generator=generator),
        "t_embedding": torch.randn(BATCH, 6, generator=generator),
    }


def _terms(name: str, options: dict, out: StepOutputs) -> dict[str, torch.Tensor]:
    return build_objective([(name, options, 1.0)])(out)


def _outputs(batch, **extra) -> StepOutputs:
    return StepOutputs(batch["student"], batch["target"], batch["teacher"], **extra)


def _ce(batch, smoothing: float = 0.0) -> torch.Tensor:
    return reference.cross_entropy(batch["student"].double(), batch["target"], smoothing)


def test_ce_passes_its_label_smoothing_and_the_labelled_mask(batch):
    labeled = batch["target"] >= 0
    labeled[0] = False
    out = StepOutputs(batch["student"], batch["target"], labeled=labeled)
    expected = reference.cross_entropy(batch["student"].double(), batch["target"].masked_fill(~labeled, -1), 0.2)
    _close(_terms("ce", {"label_smoothing": 0.2}, out)["ce"], expected)


def test_kd_drops_the_hard_term_at_alpha_one(batch):
    assert set(_terms("kd", {"alpha": 1.0}, _outputs(batch))) == {"kd"}
    assert set(_terms("kd", {"alpha": 0.5}, _outputs(batch))) == {"kd", "ce"}


@pytest.mark.parametrize(("beta", "gamma", "temperature", "ce_weight"), [(0.5, 2.0, 3.0, 0.7), (2.0, 0.0, 1.5, 0.0)])
def test_dist_weights_each_relation_and_the_hard_term(batch, beta, gamma, temperature, ce_weight):
    options = {"beta": beta, "gamma": gamma, "temperature": temperature, "ce_weight": ce_weight}
    terms = _terms("dist", options, _outputs(batch))
    inter, intra = reference.dist_terms(batch["student"].double(), batch["teacher"].double(), temperature)
    _close(terms["inter"], beta * inter, rtol=1e-3)
    _close(terms["intra"], gamma * intra, rtol=1e-3)
    if ce_weight:
        _close(terms["ce"], ce_weight * _ce(batch))
    else:
        assert "ce" not in terms


def test_dkd_drops_the_hard_term_at_zero_weight(batch):
    assert set(_terms("dkd", {"ce_weight": 0.0}, _outputs(batch))) == {"tckd", "nckd"}


@pytest.mark.parametrize(("temperature", "alpha"), [(3.0, 0.6), (2.0, 1.0)])
def test_sigmoid_kd_weights_its_soft_and_hard_terms(temperature, alpha):
    generator = torch.Generator().manual_seed(1)
    student, teacher = torch.randn(6, 3, generator=generator), torch.randn(6, 3, generator=generator)
    target = (torch.rand(6, 3, generator=generator) < 0.5).float()
    labeled = torch.tensor([True, False, True, True, False, True])
    terms = _terms(
        "sigmoid_kd",
        {"temperature": temperature, "alpha": alpha},
        StepOutputs(student, target, teacher, labeled=labeled),
    )
    _close(terms["kd"], alpha * reference.sigmoid_soft_target_loss(student.double(), teacher.double(), temperature))
    if alpha < 1:
        _close(terms["bce"], (1 - alpha) * reference.binary_cross_entropy(student.double(), target.double(), labeled))
    else:
        assert set(terms) == {"kd"}
    _close(_terms("bce", {}, StepOutputs(student, target, labeled=labeled))["bce"],
           reference.binary_cross_entropy(student.double(), target.double(), labeled))  # fmt: skip


@pytest.mark.parametrize(("alpha", "loss", "delta"), [(0.3, "mse", 1.0), (0.7, "huber", 0.4), (1.0, "huber", 2.0)])
def test_output_matching_weights_teacher_and_label_terms(alpha, loss, delta):
    generator = torch.Generator().manual_seed(2)
    student, teacher, target = (torch.randn(8, 2, generator=generator) * 2 for _ in range(3))
    labeled = torch.arange(8) % 3 != 0
    out = StepOutputs(student, target, teacher, labeled=labeled)
    terms = _terms("match", {"alpha": alpha, "loss": loss, "delta": delta}, out)
    expected_match = reference.regression_loss(student.double(), teacher.double(), None, loss, delta)
    _close(terms["match"], alpha * expected_match)
    if alpha < 1:
        expected_label = reference.regression_loss(student.double(), target.double(), labeled, loss, delta)
        _close(terms[loss], (1 - alpha) * expected_label)
    else:
        assert set(terms) == {"match"}


@pytest.mark.parametrize("delta", [0.3, 2.5])
def test_huber_and_mse_fit_the_labelled_values(delta):
    generator = torch.Generator().manual_seed(4)
    outputs, target = torch.randn(9, 2, generator=generator) * 3, torch.randn(9, 2, generator=generator)
    labeled = torch.arange(9) % 2 == 0
    out = StepOutputs(outputs, target, labeled=labeled)
    huber = reference.regression_loss(outputs.double(), target.double(), labeled, "huber", delta)
    _close(_terms("huber", {"delta": delta}, out)["huber"], huber)
    _close(
        _terms("mse", {}, out)["mse"], reference.regression_loss(outputs.double(), target.double(), labeled, "mse", 1)
    )


def _embedded(batch) -> StepOutputs:
    out = _outputs(batch)
    out.features, out.teacher_features = {"features": batch["s_embedding"]}, {"features": batch["t_embedding"]}
    return out


@pytest.mark.parametrize(("distance", "angle", "ce"), [(3.0, 5.0, 0.5), (0.0, 2.0, 0.0), (4.0, 0.0, 1.0)])
def test_rkd_weights_distance_angle_and_hard_terms(batch, distance, angle, ce):
    options = {"distance_weight": distance, "angle_weight": angle, "ce_weight": ce}
    terms = _terms("rkd", options, _embedded(batch))
    s, t = batch["s_embedding"].double(), batch["t_embedding"].double()
    expected = {"rkd_distance": distance * reference.rkd_distance(s, t), "rkd_angle": angle * reference.rkd_angle(s, t),
                "ce": ce * _ce(batch)}  # fmt: skip
    assert set(terms) == {key for key, weight in zip(expected, (distance, angle, ce), strict=True) if weight}
    for key, value in terms.items():
        _close(value, expected[key], rtol=1e-3)


@pytest.mark.parametrize(("pkt_weight", "ce_weight"), [(2.0, 0.5), (1.0, 0.0)])
def test_pkt_weights_its_terms(batch, pkt_weight, ce_weight):
    terms = _terms("pkt", {"pkt_weight": pkt_weight, "ce_weight": ce_weight}, _embedded(batch))
    expected = pkt_weight * reference.pkt_loss(batch["s_embedding"].double(), batch["t_embedding"].double())
    _close(terms["pkt"], expected, rtol=1e-3)
    assert ("ce" in terms) == bool(ce_weight)
    if ce_weight:
        _close(terms["ce"], ce_weight * _ce(batch))


def test_fitnet_regresses_through_its_adapter_and_rebuilds_from_its_options(batch):
    fitnet = FitNet(student_layer="a", teacher_layer="b", hint_weight=2.5, ce_weight=0.4, hint_epochs=3)
    fitnet.adapter = nn.Linear(4, 6)
    out = _outputs(batch)
    out.features, out.teacher_features = {"a": batch["s_embedding"]}, {"b": batch["t_embedding"]}
    terms = fitnet(out)
    with torch.no_grad():
        guided = fitnet.adapter(batch["s_embedding"]).double()
    _close(terms["hint"], 2.5 * (guided - batch["t_embedding"].double()).pow(2).mean())
    _close(terms["ce"], 0.4 * _ce(batch))
    again = FitNet(**fitnet.options())
    assert (again.student_layer, again.teacher_layer, again.hint_weight, again.ce_weight) == ("a", "b", 2.5, 0.4)


def test_tinybert_sums_projected_hidden_and_attention_losses(batch):
    generator = torch.Generator().manual_seed(5)
    objective = TinyBERT(layer_map=[[0, 1], [1, 3]], hidden_weight=0.5, attention_weight=2.0, ce_weight=0.3)
    objective.projections = nn.ModuleList([nn.Linear(4, 6), nn.Linear(4, 6)])
    out = _outputs(batch)
    hidden = {f"encoder.layer.{i}": torch.randn(BATCH, 3, 4, generator=generator) for i in (0, 1)}
    teacher_hidden = {f"encoder.layer.{i}": torch.randn(BATCH, 3, 6, generator=generator) for i in (1, 3)}
    attention = {f"encoder.layer.{i}.attention.self:1": torch.rand(BATCH, 2, 3, 3, generator=generator) for i in (0, 1)}
    teacher_attention = {f"encoder.layer.{i}.attention.self:1": torch.rand(BATCH, 4, 3, 3, generator=generator)
                         for i in (1, 3)}  # fmt: skip
    out.features, out.teacher_features = {**hidden, **attention}, {**teacher_hidden, **teacher_attention}
    terms = objective(out)
    with torch.no_grad():
        expected_hidden = sum(
            (p(hidden[f"encoder.layer.{s}"]) - teacher_hidden[f"encoder.layer.{t}"]).pow(2).mean()
            for p, (s, t) in zip(objective.projections, [(0, 1), (1, 3)], strict=True)
        )
    key = "encoder.layer.{}.attention.self:1"
    expected_attention = sum(
        (attention[key.format(s)].mean(1) - teacher_attention[key.format(t)].mean(1)).pow(2).mean()
        for s, t in [(0, 1), (1, 3)]
    )
    _close(terms["hidden"], 0.5 * expected_hidden)
    _close(terms["attention"], 2.0 * expected_attention)
    _close(terms["ce"], 0.3 * _ce(batch))


def test_self_distillation_terms_follow_be_your_own_teacher(batch):
    objective = SelfDistillation(
        layers=["shallow"], deep_layer="features", temperature=2.0, alpha=0.4, feature_weight=0.1
    )
    torch.manual_seed(0)
    objective.heads["shallow"] = AuxiliaryHead(channels=3, width=4, num_classes=CLASSES)
    shallow = torch.randn(BATCH, 3, 5)  # a feature map: pooled over its positions by the head
    out = _outputs(batch)
    out.features = {"shallow": shallow, "features": batch["s_embedding"]}
    terms = objective(out)
    with torch.no_grad():
        features, logits = objective.heads["shallow"](shallow)
    logits, features = logits.double(), features.double()
    ce = _ce(batch) + 0.6 * reference.cross_entropy(logits, batch["target"])
    soft = 0.4 * reference.soft_target_loss(logits, batch["student"].double(), 2.0)
    hint = 0.1 * (features - batch["s_embedding"].double()).pow(2).sum(1).mean()
    _close(terms["ce"], ce)
    _close(terms["soft"], soft)
    _close(terms["hint"], hint)


def test_self_distillations_hard_terms_read_the_batchs_labelled_mask(batch):
    """The final output's CE and each auxiliary head's leave out what a step's narrower mask leaves out,
    exactly as if those examples' class ids were -1 (the mask never reaches the soft or hint terms)."""
    objective = SelfDistillation(layers=["shallow"], deep_layer="features", alpha=0.4)
    torch.manual_seed(0)
    objective.heads["shallow"] = AuxiliaryHead(channels=3, width=4, num_classes=CLASSES)
    shallow = torch.randn(BATCH, 3, 5)
    labeled = _narrower_mask(batch)

    def terms(target: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        out = _outputs({**batch, "target": target}, labeled=mask)
        out.features = {"shallow": shallow, "features": batch["s_embedding"]}
        return objective(out)

    masked = terms(batch["target"], labeled)
    with torch.no_grad():
        logits = objective.heads["shallow"](shallow)[1].double()
    hidden = batch["target"].masked_fill(~labeled, -1)
    final = reference.cross_entropy(batch["student"].double(), hidden)
    expected = final + 0.6 * reference.cross_entropy(logits, hidden)
    _close(masked["ce"], expected)
    _close(masked["ce"], terms(hidden)["ce"])
    assert not torch.allclose(masked["ce"], terms(batch["target"])["ce"])
    _close(masked["soft"], terms(batch["target"])["soft"])


@pytest.mark.parametrize(
    ("student_size", "teacher_size", "pooled"), [((4, 6), (2, 3), (2, 3)), ((2, 8), (3, 3), (3, 3))]
)
def test_attention_transfer_brings_both_maps_to_the_one_with_fewer_positions(student_size, teacher_size, pooled):
    """Maps of different sizes meet at the smaller *area* (2×8 = 16 positions against 3×3 = 9: 3×3), the
    larger average-pooled down, or taken by nearest neighbour where one side is shorter."""
    generator = torch.Generator().manual_seed(7)
    s, t = torch.randn(3, 2, *student_size, generator=generator), torch.randn(3, 5, *teacher_size, generator=generator)
    objective = AttentionTransfer(["a"], ["b"], beta=100.0, ce_weight=0.0)
    out = _outputs({"student": torch.zeros(3, 2), "teacher": None, "target": torch.zeros(3, dtype=torch.long)})
    out.features, out.teacher_features = {"a": s}, {"b": t}

    def to_size(x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[2:]) == pooled:
            return x
        if all(a >= b for a, b in zip(x.shape[2:], pooled, strict=True)):
            return torch.nn.functional.adaptive_avg_pool2d(x, pooled)
        return torch.nn.functional.interpolate(x, size=pooled, mode="nearest")

    expected = reference.attention_transfer(to_size(s).double(), to_size(t).double(), 100.0)
    _close(objective(out)["attention"], expected)


def test_a_lone_weighted_objective_keeps_its_weight_and_a_sum_keeps_every_part(batch):
    """The single-objective shortcut applies to weight 1 only; a sum whose first weight is 1 still sums."""
    out = _outputs(batch)
    alone = build_objective([("ce", {}, 1.0)])(out)["ce"]
    _close(build_objective([("ce", {}, 2.0)])(out)["ce"], 2.0 * alone)
    both = build_objective([("ce", {}, 1.0), ("kd", {"alpha": 1.0, "temperature": 2.0}, 0.5)])(out)
    assert set(both) == {"ce", "kd"}
    _close(both["kd"], 0.5 * reference.soft_target_loss(batch["student"].double(), batch["teacher"].double(), 2.0))


def test_a_misspelt_weight_is_pointed_at_weight():
    """``weight`` sits beside an objective's options in a recipe, so a misspelling of it is pointed there."""
    from protege.errors import ConfigError
    from protege.objectives import check_objective_options

    with pytest.raises(ConfigError, match='did you mean "weight"'):
        check_objective_options("kd", {"wieght": 2.0})


def test_attention_transfer_adds_its_hard_term(batch):
    s = torch.randn(BATCH, 2, 4, 4, generator=torch.Generator().manual_seed(8))
    objective = AttentionTransfer(["a"], ["b"], beta=10.0, ce_weight=0.6)
    out = _outputs(batch)
    out.features, out.teacher_features = {"a": s}, {"b": s.flip(0)}
    _close(objective(out)["ce"], 0.6 * _ce(batch))


@pytest.mark.parametrize(
    ("student_size", "teacher_size", "pooled"), [((4, 6), (4, 3), (4, 3)), ((8,), (4,), (4,)), ((3,), (5,), (3,))]
)
def test_maps_meet_with_one_side_equal_and_in_one_dimension(student_size, teacher_size, pooled):
    """A map equal in one dimension and larger in the other is pooled (not sampled); 1-D maps (sequences,
    MNIST-1D's convolutions) are pooled along their one dimension."""
    generator = torch.Generator().manual_seed(9)
    s, t = torch.randn(3, 2, *student_size, generator=generator), torch.randn(3, 4, *teacher_size, generator=generator)
    objective = AttentionTransfer(["a"], ["b"], beta=100.0, ce_weight=0.0)
    out = _outputs({"student": torch.zeros(3, 2), "teacher": None, "target": torch.zeros(3, dtype=torch.long)})
    out.features, out.teacher_features = {"a": s}, {"b": t}
    pool = torch.nn.functional.adaptive_avg_pool2d if len(pooled) == 2 else torch.nn.functional.adaptive_avg_pool1d

    def to_size(x: torch.Tensor) -> torch.Tensor:
        return x if tuple(x.shape[2:]) == pooled else pool(x, pooled)

    expected = reference.attention_transfer(to_size(s).double(), to_size(t).double(), 100.0)
    _close(objective(out)["attention"], expected)


def test_fitnet_pools_its_guided_map_to_the_hint_map(batch):
    fitnet = FitNet(student_layer="a", teacher_layer="b", hint_weight=1.5, ce_weight=0.0, hint_epochs=2)
    assert fitnet.hint_epochs == 2
    fitnet.adapter = nn.Conv2d(3, 5, 1)
    generator = torch.Generator().manual_seed(10)
    s, t = torch.randn(BATCH, 3, 8, 8, generator=generator), torch.randn(BATCH, 5, 4, 4, generator=generator)
    out = _outputs(batch)
    out.features, out.teacher_features = {"a": s}, {"b": t}
    with torch.no_grad():
        guided = torch.nn.functional.adaptive_avg_pool2d(fitnet.adapter(s), (4, 4)).double()
    _close(fitnet(out)["hint"], 1.5 * (guided - t.double()).pow(2).mean())


def test_fitnet_pools_a_guided_sequence_to_the_hint_sequence(batch):
    fitnet = FitNet(student_layer="a", teacher_layer="b", hint_weight=1.0, ce_weight=0.0)
    fitnet.adapter = nn.Conv1d(3, 5, 1)
    generator = torch.Generator().manual_seed(11)
    s, t = torch.randn(BATCH, 3, 12, generator=generator), torch.randn(BATCH, 5, 4, generator=generator)
    out = _outputs(batch)
    out.features, out.teacher_features = {"a": s}, {"b": t}
    with torch.no_grad():
        guided = torch.nn.functional.adaptive_avg_pool1d(fitnet.adapter(s), 4).double()
    _close(fitnet(out)["hint"], (guided - t.double()).pow(2).mean())


@pytest.mark.parametrize(
    ("name", "options"),
    [("kd", {"alpha": 0.5}), ("dkd", {}), ("dist", {}), ("rkd", {}), ("pkt", {"ce_weight": 1.0}), ("attention", {})],
)
def test_every_hard_term_reads_the_batchs_labelled_mask(batch, name, options):
    """A step may narrow the mask (DER's replayed examples, unlearning's forgotten ones): an example the
    mask leaves out must not enter the cross-entropy, exactly as if its class id were -1."""
    labeled = _narrower_mask(batch)
    if name == "attention":
        options = {"student_layers": ["features.3"], "teacher_layers": ["features.3"], "ce_weight": 1.0}

    def outputs(target: torch.Tensor, mask: torch.Tensor | None = None) -> StepOutputs:
        out = _embedded({**batch, "target": target})
        out.labeled = mask
        if name == "attention":
            out.features = {"features.3": batch["s_embedding"].view(BATCH, 1, 2, 2)}
            out.teacher_features = {"features.3": batch["t_embedding"][:, :4].reshape(BATCH, 1, 2, 2)}
        return out

    masked = _terms(name, options, outputs(batch["target"], labeled))["ce"]
    _close(masked, _terms(name, options, outputs(batch["target"].masked_fill(~labeled, -1)))["ce"])
    assert not torch.allclose(masked, _terms(name, options, outputs(batch["target"]))["ce"])


def _with_layers(name: str, batch) -> tuple[nn.Module, dict, dict]:
    """An objective that reads tapped layers (built as a run builds it, or with its modules set by hand),
    and the student's and the teacher's layers it reads."""
    s, t = batch["s_embedding"], batch["t_embedding"]
    if name == "crd":
        torch.manual_seed(0)
        objective = build_objective([("crd", {"negatives": 3, "feat_dim": 4, "ce_weight": 1.0}, 1.0)])
        objective.setup(mlp((4,), CLASSES, hidden=4), mlp((4,), CLASSES, hidden=6), torch.randn(2, 4), 40)
        return objective, {"features": s}, {"features": t}
    if name == "fitnet":
        objective = FitNet(student_layer="a", teacher_layer="b", ce_weight=1.0)
        objective.adapter = nn.Linear(4, 6)
        return objective, {"a": s}, {"b": t}
    objective = TinyBERT(layer_map=[[0, 1]], ce_weight=1.0)
    objective.projections = nn.ModuleList([nn.Linear(4, 6)])
    key = "encoder.layer.{}.attention.self:1"
    student = {"encoder.layer.0": s.view(BATCH, 1, 4), key.format(0): torch.rand(BATCH, 2, 1, 1)}
    teacher = {"encoder.layer.1": t.view(BATCH, 1, 6), key.format(1): torch.rand(BATCH, 2, 1, 1)}
    return objective, student, teacher


@pytest.mark.parametrize("name", ["crd", "fitnet", "tinybert"])
def test_the_hard_term_of_an_objective_on_layers_reads_the_batchs_labelled_mask(batch, name):
    """CRD, FitNet and TinyBERT too: an example a step's narrower mask leaves out is out of the CE."""
    objective, student, teacher = _with_layers(name, batch)
    labeled = _narrower_mask(batch)

    def ce(target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        out = StepOutputs(batch["student"], target, batch["teacher"], dict(student), dict(teacher), labeled=mask)
        out.index = torch.arange(BATCH)
        return objective(out)["ce"]

    hidden = batch["target"].masked_fill(~labeled, -1)
    masked = ce(batch["target"], labeled)
    _close(masked, reference.cross_entropy(batch["student"].double(), hidden))
    assert not torch.allclose(masked, ce(batch["target"]))
