"""DKD (Zhao et al. 2022) and DIST (Huang et al. 2022) against hand computations on fixed tensors."""

import math

import pytest
import torch

from protege.objectives import StepOutputs, build_objective
from protege.objectives.dist import dist_terms
from protege.objectives.dkd import dkd_terms

STUDENT = [[1.0, 2.0, 0.5, -1.0], [0.0, 0.3, 0.2, 0.1]]
TEACHER = [[2.0, 1.0, 0.0, -2.0], [-1.0, 1.5, 0.5, 0.0]]
TARGET = [0, 1]


def _softmax(z, t):
    e = [math.exp(v / t) for v in z]
    return [v / sum(e) for v in e]


def _kl(p, q):
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))


def test_dkd_terms_match_eq_7_by_hand():
    """TCKD = KL(b^T‖b^S), b = [p_t, 1 − p_t]; NCKD = KL(p̂^T‖p̂^S) over non-target classes; × T²."""
    t = 2.0
    tckd = nckd = 0.0
    for s, z, y in zip(STUDENT, TEACHER, TARGET, strict=True):
        p_s, p_t = _softmax(s, t), _softmax(z, t)
        tckd += _kl([p_t[y], 1 - p_t[y]], [p_s[y], 1 - p_s[y]])
        others = [i for i in range(4) if i != y]
        hat_s = [p_s[i] / (1 - p_s[y]) for i in others]
        hat_t = [p_t[i] / (1 - p_t[y]) for i in others]
        nckd += _kl(hat_t, hat_s)
    got_t, got_n = dkd_terms(torch.tensor(STUDENT), torch.tensor(TEACHER), torch.tensor(TARGET), t)
    assert got_t.item() == pytest.approx(t * t * tckd / 2, rel=1e-5)
    assert got_n.item() == pytest.approx(t * t * nckd / 2, rel=1e-5)


def test_dkd_decomposes_classical_kd():
    """Eq. 5 of the paper: KD = TCKD + (1 − p_t^T)·NCKD, per example."""
    s, z, y, t = torch.tensor([STUDENT[0]]), torch.tensor([TEACHER[0]]), torch.tensor([0]), 3.0
    from protege.objectives import soft_target_loss

    tckd, nckd = dkd_terms(s, z, y, t)
    p_target = torch.softmax(z / t, -1)[0, 0]
    assert soft_target_loss(s, z, t).item() == pytest.approx((tckd + (1 - p_target) * nckd).item(), rel=1e-5)


def test_dkd_objective_weights_and_unlabeled_targets():
    s, z = torch.tensor(STUDENT), torch.tensor(TEACHER)
    dkd = build_objective([("dkd", {"alpha": 0.5, "beta": 2.0, "temperature": 2.0, "ce_weight": 0.0}, 1.0)])
    terms = dkd(StepOutputs(s, torch.tensor([-1, -1]), z))
    # without labels the teacher's top class is the target: [0, 1], the TARGET above
    tckd, nckd = dkd_terms(s, z, torch.tensor(TARGET), 2.0)
    assert terms["tckd"].item() == pytest.approx(0.5 * tckd.item(), rel=1e-6)
    assert terms["nckd"].item() == pytest.approx(2.0 * nckd.item(), rel=1e-6)
    assert "ce" not in terms


def _pearson(a, b):
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True))
    return cov / math.sqrt(sum((x - ma) ** 2 for x in a) * sum((y - mb) ** 2 for y in b))


def test_dist_terms_match_eqs_5_to_7_by_hand():
    """inter = mean over examples of 1 − ρ(p_s, p_t); intra = mean over classes of 1 − ρ(p_s[:, c], p_t[:, c])."""
    t = 1.5
    p_s = [_softmax(r, t) for r in STUDENT]
    p_t = [_softmax(r, t) for r in TEACHER]
    inter = sum(1 - _pearson(a, b) for a, b in zip(p_s, p_t, strict=True)) / 2
    cols = lambda p, c: [row[c] for row in p]  # noqa: E731
    intra = sum(1 - _pearson(cols(p_s, c), cols(p_t, c)) for c in range(4)) / 4
    got_inter, got_intra = dist_terms(torch.tensor(STUDENT), torch.tensor(TEACHER), t)
    assert got_inter.item() == pytest.approx(t * t * inter, rel=1e-4)
    assert got_intra.item() == pytest.approx(t * t * intra, rel=1e-4)


def test_dist_is_invariant_to_scale_and_shift_of_the_relations():
    """A perfectly correlated student has zero relation loss even with different probabilities."""
    z = torch.tensor(TEACHER)
    inter, _ = dist_terms(z, z, 1.0)
    assert inter.item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("name", ["dkd", "dist"])
def test_gradient_reaches_the_student_only(name):
    student = torch.tensor(STUDENT, requires_grad=True)
    teacher = torch.tensor(TEACHER, requires_grad=True)
    objective = build_objective([(name, {}, 1.0)])
    with torch.no_grad():
        teacher_out = teacher * 1.0
    sum(objective(StepOutputs(student, torch.tensor(TARGET), teacher_out)).values()).backward()
    assert student.grad is not None and student.grad.abs().sum() > 0 and teacher.grad is None


def test_dkd_reads_a_mixed_batchs_soft_targets_at_their_most_probable_class():
    """Mixup's soft targets (protege.data.augmented): the target class of DKD's split is the larger share."""
    dkd = build_objective([("dkd", {"ce_weight": 0.0}, 1.0)])
    soft = torch.tensor([[0.7, 0.0, 0.3, 0.0], [0.0, 0.6, 0.0, 0.4]])
    student, teacher = torch.tensor(STUDENT), torch.tensor(TEACHER)
    with_soft = dkd(StepOutputs(student, soft, teacher))
    with_ids = dkd(StepOutputs(student, torch.tensor(TARGET), teacher))
    for name in ("tckd", "nckd"):
        torch.testing.assert_close(with_soft[name], with_ids[name])
