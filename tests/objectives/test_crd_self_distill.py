"""CRD (Tian et al. 2020) and deepest-to-shallow self-distillation (Zhang et al. 2019)."""

import math

import pytest
import torch
from tests.conftest import make_blobs
from torch.nn import functional as F

from protege.config import TrainConfig
from protege.engine import fit
from protege.errors import ConfigError
from protege.models.builtin import cnn1d, mlp
from protege.objectives import StepOutputs, build_objective
from protege.objectives.crd import nce_loss
from protege.objectives.kd import soft_target_loss


def test_nce_loss_matches_eq_18_19_by_hand():
    """h(x) = P/(P + K/M); loss = −log h(pos) − Σ_neg log(1 − h(neg)), averaged over the batch."""
    scores = torch.tensor([[0.5, 0.1, 0.2], [0.05, 0.3, 0.01]])
    m, k = 10, 2
    expected = 0.0
    for row in scores.tolist():
        h = [p / (p + k / m) for p in row]
        expected += -math.log(h[0]) - sum(math.log(1 - v) for v in h[1:])
    assert nce_loss(scores, m).item() == pytest.approx(expected / 2, rel=1e-5)


def _crd(num_examples=8, negatives=3, **options):
    torch.manual_seed(0)
    student, teacher = mlp((6,), 3, hidden=5), mlp((6,), 3, hidden=7)
    objective = build_objective([("crd", {"negatives": negatives, "feat_dim": 4, "ce_weight": 0.0, **options}, 1.0)])
    objective.setup(student, teacher, torch.randn(2, 6), num_examples)
    return objective.parts[0]


def test_crd_loss_matches_a_hand_computation_and_updates_the_memory():
    crd = _crd()
    s, t = torch.randn(2, 5, requires_grad=True), torch.randn(2, 7)
    index = torch.tensor([3, 5])
    mem_s, mem_t = crd.memory_student.clone(), crd.memory_teacher.clone()
    state = torch.get_rng_state()
    out = StepOutputs(torch.zeros(2, 3), torch.tensor([0, 1]), torch.zeros(2, 3), {"features": s}, {"features": t})
    out.index = index
    loss = crd(out)["crd"]
    torch.set_rng_state(state)
    contrast = torch.randint(0, 8, (2, 4))
    contrast[:, 0] = index
    e_s = F.normalize(crd.embed_student(s), dim=1)
    e_t = F.normalize(crd.embed_teacher(t), dim=1)

    def scores(e, memory):
        p = torch.exp(torch.einsum("bkd,bd->bk", memory[contrast], e) / 0.07)
        return p / (p.mean() * 8)  # Z is estimated on the first batch

    expected = 0.8 * (nce_loss(scores(e_s, mem_t), 8) + nce_loss(scores(e_t, mem_s), 8))
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(crd.memory_student[index], F.normalize(0.5 * mem_s[index] + 0.5 * e_s.detach(), dim=1))
    assert torch.equal(crd.memory_student[[0, 1, 2, 4, 6, 7]], mem_s[[0, 1, 2, 4, 6, 7]])
    z = crd.z_student.item()
    loss.backward()
    assert s.grad is not None and crd.embed_student.weight.grad is not None
    crd(out)
    assert crd.z_student.item() == z  # Z stays fixed after the first batch


def test_crd_needs_example_positions():
    crd = _crd()
    out = StepOutputs(torch.zeros(2, 3), torch.tensor([0, 1]), None, {"features": torch.randn(2, 5)})
    out.teacher_features = {"features": torch.randn(2, 7)}
    with pytest.raises(ConfigError, match="position"):
        crd(out)


def test_crd_trains_end_to_end_and_its_memory_is_checkpointed(tmp_path):
    torch.manual_seed(0)
    teacher, student = mlp((6,), 3, hidden=32), mlp((6,), 3, hidden=8)
    objective = build_objective([("crd", {"negatives": 16, "feat_dim": 8}, 1.0)])
    result = fit(student, make_blobs(96), objective, TrainConfig(epochs=5, lr=0.02), teacher=teacher, workdir=tmp_path)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    saved = next(tmp_path.glob("checkpoints/*/objective.safetensors"))
    from safetensors.torch import load_file

    assert load_file(saved)["parts.0.memory_student"].shape == (96, 8)


def test_self_distillation_matches_eq_1_3_by_hand():
    torch.manual_seed(0)
    student = cnn1d((1, 16), 3, width=4, depth=2)
    options = {"layers": ["features.0"], "temperature": 2.0, "alpha": 0.3, "feature_weight": 0.5}
    objective = build_objective([("self_distill", options, 1.0)]).parts[0]
    objective.setup(student, None, torch.randn(2, 1, 16), 2)
    shallow = torch.randn(2, 4, 7, requires_grad=True)
    deep = torch.randn(2, 16)
    logits = torch.randn(2, 3, requires_grad=True)
    target = torch.tensor([0, 2])
    out = StepOutputs(logits, target, features={"features.0": shallow, "features": deep})
    terms = objective(out)
    head = objective.heads["features__0"]
    features = torch.relu(head.bottleneck[0](shallow.mean(2)))
    aux = head.classifier(features)
    torch.testing.assert_close(terms["ce"], F.cross_entropy(logits, target) + 0.7 * F.cross_entropy(aux, target))
    torch.testing.assert_close(terms["soft"], 0.3 * soft_target_loss(aux, logits.detach(), 2.0))
    torch.testing.assert_close(terms["hint"], 0.5 * (features - deep).pow(2).sum(1).mean())
    (terms["soft"] + terms["hint"]).backward()
    assert logits.grad is None  # the deepest output is the teacher: the soft and hint terms leave it alone
    assert shallow.grad is not None


def test_self_distillation_trains_without_a_teacher_and_refuses_a_map_as_deep_layer():
    torch.manual_seed(0)
    data = make_blobs(96, features=16)
    data.x = data.x.unsqueeze(1)
    student = cnn1d((1, 16), 3, width=4, depth=2)
    objective = build_objective([("self_distill", {"layers": ["features.0"]}, 1.0)])
    result = fit(student, data, objective, TrainConfig(epochs=3, lr=0.02))
    assert result.teacher_mode is None and result.final["train_accuracy"] > 0.8
    assert set(student.state_dict()) == set(cnn1d((1, 16), 3, width=4, depth=2).state_dict())  # no aux heads
    wrong = build_objective([("self_distill", {"layers": ["features.0"], "deep_layer": "features.1"}, 1.0)])
    with pytest.raises(ConfigError, match="vector per example"):
        fit(cnn1d((1, 16), 3, width=4, depth=2), data, wrong, TrainConfig(epochs=1))


@pytest.mark.parametrize(("num_examples", "negatives"), [(200, 3), (5, 10)])
def test_crd_gathers_a_large_bank_and_caps_negatives_at_the_other_examples(num_examples, negatives):
    """Above 16 rows per sampled column the bank is gathered (bmm) rather than multiplied whole; with
    fewer examples than negatives, every other example is a negative. Both against the hand computation."""
    crd = _crd(num_examples, negatives, ce_weight=0.5)
    s, t = torch.randn(3, 5), torch.randn(3, 7)
    index = torch.tensor([4, 0, 2])
    mem_s, mem_t = crd.memory_student.clone(), crd.memory_teacher.clone()
    out = StepOutputs(torch.randn(3, 3), torch.tensor([0, 1, -1]), torch.zeros(3, 3), {"features": s}, {"features": t})
    out.index = index
    state = torch.get_rng_state()
    terms = crd(out)
    torch.set_rng_state(state)
    k = min(negatives, num_examples - 1)
    contrast = torch.randint(0, num_examples, (3, k + 1))
    contrast[:, 0] = index
    e_s, e_t = F.normalize(crd.embed_student(s), dim=1), F.normalize(crd.embed_teacher(t), dim=1)

    def scores(e, memory):
        p = torch.exp((memory[contrast] * e.unsqueeze(1)).sum(-1) / 0.07)
        return p / (p.mean() * num_examples)

    expected = 0.8 * (nce_loss(scores(e_s, mem_t), num_examples) + nce_loss(scores(e_t, mem_s), num_examples))
    torch.testing.assert_close(terms["crd"], expected)
    torch.testing.assert_close(terms["ce"], 0.5 * F.cross_entropy(out.logits[:2], out.target[:2]))
    torch.testing.assert_close(crd.memory_teacher[index], F.normalize(0.5 * mem_t[index] + 0.5 * e_t, dim=1))


def test_crd_memory_starts_uniform_in_the_papers_bound_and_z_unset():
    """Rows start uniform in ±1/√(feat_dim/3) (the authors' init, unit variance per row), Z at −1: unset."""
    torch.manual_seed(0)
    objective = build_objective([("crd", {"feat_dim": 12}, 1.0)]).parts[0]
    objective.setup(mlp((6,), 3, hidden=5), mlp((6,), 3, hidden=7), torch.randn(2, 6), 2000)
    bound = 1 / math.sqrt(12 / 3)
    for memory in (objective.memory_student, objective.memory_teacher):
        assert memory.shape == (2000, 12)
        assert -bound <= memory.min().item() < -0.99 * bound and 0.99 * bound < memory.max().item() <= bound
        assert abs(memory.mean().item()) < 0.01
    assert objective.z_student.item() == objective.z_teacher.item() == -1.0
    assert (objective.embed_student.in_features, objective.embed_teacher.in_features) == (5, 7)
    assert objective.embed_student.out_features == objective.embed_teacher.out_features == 12
