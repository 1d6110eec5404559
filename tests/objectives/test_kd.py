"""Knowledge distillation loss (Hinton, Vinyals & Dean 2015) against hand computations."""

import math

import pytest
import torch

from protege.objectives import StepOutputs, build_objective, hard_label_loss, soft_target_loss


def _softmax(z, t):
    e = [math.exp(v / t) for v in z]
    s = sum(e)
    return [v / s for v in e]


def test_soft_target_loss_matches_hand_computation():
    """L = T² · Σ_i p_i^T (log p_i^T − log q_i^T), p = softmax(teacher/T), q = softmax(student/T) (eq. 2)."""
    student, teacher, t = [1.0, 2.0, 3.0], [3.0, 1.0, 0.5], 2.0
    p, q = _softmax(teacher, t), _softmax(student, t)
    expected = t * t * sum(pi * (math.log(pi) - math.log(qi)) for pi, qi in zip(p, q, strict=True))
    got = soft_target_loss(torch.tensor([student]), torch.tensor([teacher]), t)
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_soft_target_loss_averages_over_the_batch():
    s = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    t = torch.tensor([[3.0, 1.0, 0.5], [1.0, -1.0, 0.0]])
    per_example = [soft_target_loss(s[i : i + 1], t[i : i + 1], 3.0).item() for i in range(2)]
    assert soft_target_loss(s, t, 3.0).item() == pytest.approx(sum(per_example) / 2, rel=1e-6)


def test_high_temperature_limit_is_logit_matching():
    """As T → ∞, T²·KL → (1 / 2C) Σ (z_t − z_s)² for zero-mean logits (Hinton et al. 2015, section 2.1)."""
    z_s = torch.tensor([[0.3, -0.1, -0.2]], dtype=torch.float64)  # float64: the KL is tiny at high T
    z_t = torch.tensor([[-0.4, 0.5, -0.1]], dtype=torch.float64)
    expected = ((z_t - z_s) ** 2).sum().item() / (2 * 3)
    assert soft_target_loss(z_s, z_t, 1000.0).item() == pytest.approx(expected, rel=1e-3)
    assert soft_target_loss(z_s, z_t, 100.0).item() == pytest.approx(expected, rel=1e-2)


def test_temperature_softens_and_the_t_squared_factor_is_applied():
    s, t = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 2.0]])
    raw_kl = lambda temp: soft_target_loss(s, t, temp).item() / temp**2  # noqa: E731
    # softer distributions are closer: the KL itself shrinks as T grows
    assert raw_kl(1.0) > raw_kl(2.0) > raw_kl(8.0)
    # and the T² factor is exactly what separates the reported loss from the raw KL
    p, q = _softmax([0.0, 2.0], 4.0), _softmax([2.0, 0.0], 4.0)
    kl = sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))
    assert soft_target_loss(s, t, 4.0).item() == pytest.approx(16 * kl, rel=1e-6)


def test_identical_logits_give_zero_soft_loss():
    z = torch.randn(4, 5)
    assert soft_target_loss(z, z.clone(), 4.0).item() == pytest.approx(0.0, abs=1e-6)


def test_kd_mixes_soft_and_hard_terms_by_alpha():
    s = torch.tensor([[1.0, 2.0, 3.0], [0.5, 0.0, -0.5]])
    t = torch.tensor([[3.0, 1.0, 0.5], [0.0, 1.0, 0.0]])
    y = torch.tensor([2, 0])
    kd = build_objective([("kd", {"temperature": 2.0, "alpha": 0.7}, 1.0)])
    terms = kd(StepOutputs(s, y, t))
    assert terms["kd"].item() == pytest.approx(0.7 * soft_target_loss(s, t, 2.0).item(), rel=1e-6)
    ce = torch.nn.functional.cross_entropy(s, y).item()
    assert terms["ce"].item() == pytest.approx(0.3 * ce, rel=1e-6)


def test_alpha_one_has_no_hard_term():
    kd = build_objective([("kd", {"alpha": 1.0}, 1.0)])
    terms = kd(StepOutputs(torch.randn(3, 4), torch.tensor([0, 1, 2]), torch.randn(3, 4)))
    assert set(terms) == {"kd"}


def test_unlabeled_examples_are_left_out_of_the_hard_loss():
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [5.0, -5.0]])
    target = torch.tensor([0, -1, -1])
    expected = torch.nn.functional.cross_entropy(logits[:1], target[:1]).item()
    assert hard_label_loss(logits, target).item() == pytest.approx(expected, rel=1e-6)
    # a batch with no labels at all gives zero, not NaN
    assert hard_label_loss(logits, torch.full((3,), -1)).item() == 0.0


def test_gradient_reaches_the_student_only():
    student = torch.randn(4, 3, requires_grad=True)
    teacher = torch.randn(4, 3, requires_grad=True)
    kd = build_objective([("kd", {"temperature": 3.0, "alpha": 0.5}, 1.0)])
    with torch.no_grad():
        teacher_out = teacher * 1.0  # what the engine hands over: computed without grad
    loss = sum(kd(StepOutputs(student, torch.tensor([0, 1, 2, -1]), teacher_out)).values())
    loss.backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    assert teacher.grad is None


def test_weighted_sum_of_objectives():
    s, t, y = torch.randn(3, 4), torch.randn(3, 4), torch.tensor([0, 1, 2])
    combo = build_objective([("ce", {}, 0.25), ("kd", {"alpha": 1.0, "temperature": 2.0}, 2.0)])
    terms = combo(StepOutputs(s, y, t))
    assert terms["ce"].item() == pytest.approx(0.25 * torch.nn.functional.cross_entropy(s, y).item(), rel=1e-6)
    assert terms["kd"].item() == pytest.approx(2.0 * soft_target_loss(s, t, 2.0).item(), rel=1e-6)
    assert combo.needs_teacher


def test_label_smoothing_matches_torch():
    s, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 3, 0])
    ce = build_objective([("ce", {"label_smoothing": 0.1}, 1.0)])
    expected = torch.nn.functional.cross_entropy(s, y, label_smoothing=0.1).item()
    assert ce(StepOutputs(s, y))["ce"].item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("shape", [(5, 4), (3, 6, 4), (4,)])
def test_closed_form_gradient_equals_autograd_through_the_loss(shape):
    """The fixed-target path writes the gradient out; it must equal autograd's through the same formula."""
    torch.manual_seed(0)
    student = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    teacher = torch.randn(*shape, dtype=torch.float64)
    t = 2.5
    torch.autograd.gradcheck(lambda s: soft_target_loss(s, teacher, t), (student,))
    batch = shape[0] if len(shape) > 1 else 1
    log_q = torch.log_softmax(student / t, -1)
    log_p = torch.log_softmax(teacher / t, -1)
    reference = (log_p.exp() * (log_p - log_q)).sum() * t * t / batch
    (expected,) = torch.autograd.grad(reference, student)
    loss = soft_target_loss(student, teacher, t)
    (got,) = torch.autograd.grad(loss * 3.0, student)  # an upstream factor reaches the gradient too
    torch.testing.assert_close(loss, reference)
    torch.testing.assert_close(got, 3.0 * expected)


def test_a_target_that_learns_gets_its_gradient_too():
    """Mutual learning: when the soft target itself requires grad, both sides receive gradients."""
    student = torch.randn(4, 3, requires_grad=True)
    peer = torch.randn(4, 3, requires_grad=True)
    soft_target_loss(student, peer, 2.0).backward()
    assert student.grad.abs().sum() > 0 and peer.grad.abs().sum() > 0


def test_half_precision_logits_get_a_gradient_of_their_own_dtype():
    student = torch.randn(4, 3).to(torch.bfloat16).requires_grad_()
    loss = soft_target_loss(student, torch.randn(4, 3).to(torch.bfloat16), 4.0)
    loss.backward()
    assert loss.dtype == torch.float32 and student.grad.dtype == torch.bfloat16
