"""Property checks of the objectives: for random logits, batch sizes (including the ≥ 64 rows where the
CPU fast paths switch on) and class counts (including < 16), each loss and its gradient equal the
paper's equation written plainly (tests/objectives/reference.py), and the invariances hold."""

from __future__ import annotations

import math
import os

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tests.objectives import reference

from protege.objectives import StepOutputs, build_objective, hard_label_loss, soft_target_loss
from protege.objectives.crd import nce_loss
from protege.objectives.dist import dist_terms, pearson_distance
from protege.objectives.dkd import dkd_terms
from protege.objectives.hints import AttentionTransfer, attention_map
from protege.objectives.kd import _log_softmax
from protege.objectives.multilabel import binary_cross_entropy, sigmoid_soft_target_loss
from protege.objectives.regression import regression_loss
from protege.objectives.relational import pkt_loss, rkd_angle, rkd_distance

EXAMPLES = int(os.environ.get("PROTEGE_PROPERTY_EXAMPLES", "30"))
"""Examples per property; tools/mutate.py runs fewer (each test also has explicit fast-path examples)."""
CHECKS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
BATCHES = st.sampled_from([1, 2, 5, 63, 64, 65, 130])
"""Around 64 rows, where ``_log_softmax`` switches to its transposed kernel."""
CLASSES = st.sampled_from([2, 3, 10, 15, 16, 17, 40])
"""Around 16 classes, the other side of the same switch."""
TEMPERATURES = st.sampled_from([0.5, 1.0, 2.0, 4.0, 7.5])


def _logits(seed: int, batch: int, classes: int, scale: float = 3.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, classes, generator=generator) * scale


def _gradient(loss_of, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.detach().clone().requires_grad_(True)
    loss = loss_of(x)
    (grad,) = torch.autograd.grad(loss, x)
    return loss.detach(), grad


def _assert_close(actual: torch.Tensor, expected: torch.Tensor, rtol: float = 1e-4, atol: float = 1e-6) -> None:
    torch.testing.assert_close(actual.double(), expected.double(), rtol=rtol, atol=atol)


def _same_loss_and_gradient(ours, theirs, x: torch.Tensor, rtol: float = 1e-4, atol: float = 1e-6) -> None:
    """``ours`` on float32 inputs against ``theirs`` (the reference) in float64, value and gradient."""
    loss, grad = _gradient(ours, x.float())
    expected_loss, expected_grad = _gradient(theirs, x.double())
    _assert_close(loss, expected_loss, rtol, atol)
    _assert_close(grad, expected_grad, rtol, atol)


# ---- the soft-target loss and its fast paths ---------------------------------------------------


@CHECKS
@given(st.integers(0, 10_000), BATCHES, CLASSES, TEMPERATURES)
@example(0, 64, 10, 4.0)  # the transposed kernel
@example(0, 64, 16, 4.0)  # just past it
@example(0, 3, 10, 2.0)
def test_soft_target_loss_and_gradient_equal_the_equation(seed, batch, classes, temperature):
    """The closed-form gradient and the transposed log-softmax give Hinton's loss and its autograd gradient."""
    student, teacher = _logits(seed, batch, classes), _logits(seed + 1, batch, classes)
    _same_loss_and_gradient(
        lambda s: soft_target_loss(s, teacher.float(), temperature),
        lambda s: reference.soft_target_loss(s, teacher.double(), temperature),
        student,
    )


@CHECKS
@given(st.integers(0, 10_000), BATCHES, CLASSES, TEMPERATURES, st.floats(0.1, 3.0))
def test_weighted_soft_target_loss_scales_value_and_gradient(seed, batch, classes, temperature, weight):
    student, teacher = _logits(seed, batch, classes), _logits(seed + 1, batch, classes)
    _same_loss_and_gradient(
        lambda s: soft_target_loss(s, teacher.float(), temperature, weight),
        lambda s: weight * reference.soft_target_loss(s, teacher.double(), temperature),
        student,
    )


@CHECKS
@given(st.integers(0, 10_000), BATCHES, CLASSES, TEMPERATURES)
def test_mutual_learning_gradients_reach_both_sides(seed, batch, classes, temperature):
    """With a teacher that learns too (autograd path), both gradients are the equation's."""
    student, teacher = _logits(seed, batch, classes), _logits(seed + 1, batch, classes)
    s, t = student.clone().requires_grad_(True), teacher.clone().requires_grad_(True)
    soft_target_loss(s, t, temperature).backward()
    s_ref, t_ref = student.double().requires_grad_(True), teacher.double().requires_grad_(True)
    reference.soft_target_loss(s_ref, t_ref, temperature).backward()
    _assert_close(s.grad, s_ref.grad)
    _assert_close(t.grad, t_ref.grad)


@CHECKS
@given(st.integers(0, 10_000), BATCHES, CLASSES, st.floats(-50, 50))
def test_soft_target_loss_is_zero_for_logits_equal_up_to_a_shift(seed, batch, classes, shift):
    teacher = _logits(seed, batch, classes)
    per_row = torch.linspace(-1, 1, batch).unsqueeze(1) * shift
    assert soft_target_loss(teacher + per_row, teacher, 4.0).item() == pytest.approx(0.0, abs=1e-4)
    assert soft_target_loss(_logits(seed + 1, batch, classes), teacher, 4.0).item() >= 0.0


@CHECKS
@given(st.integers(0, 10_000), BATCHES, CLASSES)
@example(0, 64, 15)
@example(0, 63, 10)
@example(0, 64, 16)
def test_log_softmax_fast_path_equals_the_plain_one(seed, batch, classes):
    """The transposed kernel (≥ 64 rows, < 16 classes) and the plain one both normalise over the classes."""
    logits = _logits(seed, batch, classes)
    expected = reference.log_softmax(logits.double())
    _assert_close(_log_softmax(logits), expected, rtol=1e-5, atol=1e-5)
    _assert_close(_log_softmax(logits).exp().sum(-1), torch.ones(batch, dtype=torch.float64), rtol=1e-5, atol=1e-5)


# ---- cross-entropy -----------------------------------------------------------------------------


@CHECKS
@given(st.integers(0, 10_000), BATCHES, CLASSES, st.sampled_from([0.0, 0.1, 0.3]), st.floats(0.0, 0.8))
def test_hard_label_loss_equals_the_equation(seed, batch, classes, smoothing, unlabelled_share):
    """Label-smoothed cross-entropy over the labelled examples only (class id −1 is unlabelled)."""
    generator = torch.Generator().manual_seed(seed)
    target = torch.randint(0, classes, (batch,), generator=generator)
    target[torch.rand(batch, generator=generator) < unlabelled_share] = -1
    _same_loss_and_gradient(
        lambda z: hard_label_loss(z, target, smoothing),
        lambda z: reference.cross_entropy(z, target, smoothing),
        _logits(seed, batch, classes),
    )


@CHECKS
@given(st.integers(0, 10_000), BATCHES, CLASSES)
def test_hard_label_loss_honours_a_narrower_labelled_mask(seed, batch, classes):
    """A mask that leaves out labelled examples (replayed, forgotten ones) counts as unlabelled."""
    generator = torch.Generator().manual_seed(seed)
    target = torch.randint(0, classes, (batch,), generator=generator)
    labeled = torch.rand(batch, generator=generator) < 0.6
    logits = _logits(seed, batch, classes)
    expected = reference.cross_entropy(logits.double(), target.masked_fill(~labeled, -1))
    _assert_close(hard_label_loss(logits, target, 0.0, labeled), expected)


@CHECKS
@given(st.integers(0, 10_000), BATCHES, CLASSES, st.sampled_from([0.0, 0.2]))
def test_hard_label_loss_with_soft_targets_equals_the_equation(seed, batch, classes, smoothing):
    probabilities = _logits(seed + 1, batch, classes).softmax(-1)
    _same_loss_and_gradient(
        lambda z: hard_label_loss(z, probabilities.float(), smoothing),
        lambda z: reference.soft_cross_entropy(z, probabilities.double(), smoothing),
        _logits(seed, batch, classes),
    )


# ---- KD, DKD, DIST as objectives ---------------------------------------------------------------


@CHECKS
@given(st.integers(0, 10_000), BATCHES, CLASSES, TEMPERATURES, st.sampled_from([0.0, 0.5, 0.9, 1.0]), st.booleans())
@example(0, 64, 10, 4.0, 0.5, True)
@example(0, 5, 17, 2.0, 0.9, False)
def test_kd_objective_mixes_soft_and_smoothed_hard_terms(seed, batch, classes, temperature, alpha, smooth):
    """α · T²·KL + (1 − α) · CE(label smoothing) on the labelled examples."""
    teacher = _logits(seed + 1, batch, classes)
    target = torch.randint(0, classes, (batch,), generator=torch.Generator().manual_seed(seed))
    target[::3] = -1
    smoothing = 0.1 if smooth else 0.0
    kd = build_objective([("kd", {"temperature": temperature, "alpha": alpha, "label_smoothing": smoothing}, 1.0)])

    def ours(z):
        return sum(kd(StepOutputs(z, target, teacher.float())).values())

    def theirs(z):
        soft = alpha * reference.soft_target_loss(z, teacher.double(), temperature)
        return soft + (1 - alpha) * reference.cross_entropy(z, target, smoothing)

    _same_loss_and_gradient(ours, theirs, _logits(seed, batch, classes))


@CHECKS
@given(st.integers(0, 10_000), st.sampled_from([1, 3, 64, 70]), st.sampled_from([2, 3, 10, 17]), TEMPERATURES)
def test_dkd_terms_equal_the_equations(seed, batch, classes, temperature):
    student, teacher = _logits(seed, batch, classes), _logits(seed + 1, batch, classes)
    target = torch.randint(0, classes, (batch,), generator=torch.Generator().manual_seed(seed))
    for part in (0, 1):  # TCKD, then NCKD
        _same_loss_and_gradient(
            lambda s, p=part: dkd_terms(s, teacher.float(), target, temperature)[p],
            lambda s, p=part: reference.dkd_terms(s, teacher.double(), target, temperature)[p],
            student,
            rtol=1e-3,
            atol=1e-5,
        )


@CHECKS
@given(st.integers(0, 10_000), st.sampled_from([2, 3, 10]), st.floats(0.0, 3.0), st.floats(0.0, 10.0))
def test_dkd_objective_weights_its_terms_and_labels_transfer_examples_by_the_teacher(seed, classes, alpha, beta):
    batch = 6
    student, teacher = _logits(seed, batch, classes), _logits(seed + 1, batch, classes)
    target = torch.randint(0, classes, (batch,), generator=torch.Generator().manual_seed(seed))
    target[:2] = -1
    options = {"alpha": alpha, "beta": beta, "temperature": 2.0, "ce_weight": 0.7}
    terms = build_objective([("dkd", options, 1.0)])(StepOutputs(student, target, teacher))
    filled = torch.where(target >= 0, target, teacher.argmax(-1))
    tckd, nckd = reference.dkd_terms(student.double(), teacher.double(), filled, 2.0)
    _assert_close(terms["tckd"], alpha * tckd, rtol=1e-3, atol=1e-5)
    _assert_close(terms["nckd"], beta * nckd, rtol=1e-3, atol=1e-5)
    _assert_close(terms["ce"], 0.7 * reference.cross_entropy(student.double(), target))


@CHECKS
@given(st.integers(0, 10_000), st.sampled_from([3, 5, 64, 65]), st.sampled_from([3, 10, 17]), TEMPERATURES)
def test_dist_terms_equal_the_equations(seed, batch, classes, temperature):
    """(With two points a correlation is ±1 whatever they are, so its gradient is rounding: 3 and up.)"""
    student, teacher = _logits(seed, batch, classes), _logits(seed + 1, batch, classes)
    for part in (0, 1):  # inter-class, then intra-class
        _same_loss_and_gradient(
            lambda s, p=part: dist_terms(s, teacher.float(), temperature)[p],
            lambda s, p=part: reference.dist_terms(s, teacher.double(), temperature)[p],
            student,
            rtol=1e-3,
            atol=1e-5,
        )


@CHECKS
@given(st.integers(0, 10_000), st.floats(0.01, 100.0), st.floats(-10.0, 10.0), st.sampled_from([0, 1]))
def test_pearson_distance_is_invariant_to_a_positive_affine_map(seed, scale, offset, dim):
    a, b = _logits(seed, 8, 5), _logits(seed + 1, 8, 5)
    _assert_close(pearson_distance(a * scale + offset, b, dim), pearson_distance(a, b, dim), rtol=1e-3, atol=1e-4)
    assert pearson_distance(a, -a, dim).item() == pytest.approx(2.0, abs=1e-4)


@CHECKS
@given(st.integers(0, 10_000), st.sampled_from([5, 64]), st.sampled_from([3, 10]), st.floats(-20, 20))
def test_dkd_and_dist_vanish_for_logits_equal_up_to_a_shift(seed, batch, classes, shift):
    """(Logits of scale 1: a near-constant column of probabilities meets DIST's 1e-8 and leaves ~1e-4.)"""
    teacher = _logits(seed, batch, classes, scale=1.0)
    target = teacher.argmax(-1)
    for value in (*dkd_terms(teacher + shift, teacher, target, 4.0), *dist_terms(teacher + shift, teacher, 1.0)):
        assert value.item() == pytest.approx(0.0, abs=1e-4)


# ---- embedding objectives ----------------------------------------------------------------------

EMBEDDINGS = st.tuples(st.integers(0, 10_000), st.integers(3, 7), st.integers(1, 6), st.integers(1, 6))
"""(seed, batch, student width, teacher width): the references loop over pairs and triplets."""


def _embeddings(seed: int, batch: int, width: int) -> torch.Tensor:
    return torch.randn(batch, width, generator=torch.Generator().manual_seed(seed))


def _orthogonal(width: int, seed: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(width, width, generator=torch.Generator().manual_seed(seed)))
    return q


@CHECKS
@given(EMBEDDINGS)
def test_rkd_losses_equal_the_equations(shapes):
    seed, batch, s_width, t_width = shapes
    student, teacher = _embeddings(seed, batch, s_width), _embeddings(seed + 1, batch, t_width)
    for ours, theirs in ((rkd_distance, reference.rkd_distance), (rkd_angle, reference.rkd_angle)):
        _same_loss_and_gradient(
            lambda s, f=ours: f(s, teacher.float()),
            lambda s, f=theirs: f(s, teacher.double()),
            student,
            rtol=1e-3,
            atol=1e-5,
        )


@CHECKS
@given(EMBEDDINGS, st.floats(0.05, 20.0), st.floats(-5.0, 5.0))
def test_rkd_losses_ignore_scale_translation_and_rotation_of_the_student(shapes, scale, shift):
    """Relations between examples, not coordinates: the student's embedding may live in any frame."""
    seed, batch, s_width, t_width = shapes
    student, teacher = _embeddings(seed, batch, s_width), _embeddings(seed + 1, batch, t_width)
    moved = (student @ _orthogonal(s_width, seed)) * scale + shift
    for loss in (rkd_distance, rkd_angle):
        _assert_close(loss(moved, teacher), loss(student, teacher), rtol=1e-3, atol=1e-4)


@CHECKS
@given(EMBEDDINGS)
def test_pkt_equals_the_equation_and_ignores_each_example_s_scale(shapes):
    seed, batch, s_width, t_width = shapes
    student, teacher = _embeddings(seed, batch, s_width + 1), _embeddings(seed + 1, batch, t_width + 1)
    _same_loss_and_gradient(
        lambda s: pkt_loss(s, teacher.float()), lambda s: reference.pkt_loss(s, teacher.double()), student, 1e-3, 1e-6
    )
    scales = torch.linspace(0.1, 10.0, batch).unsqueeze(1)
    _assert_close(pkt_loss(student * scales, teacher), pkt_loss(student, teacher), rtol=1e-3, atol=1e-6)
    assert pkt_loss(teacher, teacher).item() == pytest.approx(0.0, abs=1e-6)


@CHECKS
@given(st.integers(0, 10_000), st.integers(1, 5), st.integers(1, 4), st.sampled_from([(4, 4), (3, 5)]))
def test_attention_transfer_equals_the_equation(seed, batch, channels, size):
    generator = torch.Generator().manual_seed(seed)
    student = torch.randn(batch, channels, *size, generator=generator)
    teacher = torch.randn(batch, channels + 2, *size, generator=generator)
    objective = AttentionTransfer(["a"], ["b"], beta=250.0, ce_weight=0.0)

    def ours(s):
        out = StepOutputs(torch.zeros(batch, 2), torch.zeros(batch, dtype=torch.long))
        out.features, out.teacher_features = {"a": s}, {"b": teacher.float()}
        return objective(out)["attention"]

    _same_loss_and_gradient(ours, lambda s: reference.attention_transfer(s, teacher.double(), 250.0), student)
    _assert_close(attention_map(student * 3.0), attention_map(student), rtol=1e-5, atol=1e-6)


# ---- multi-label, regression, CRD --------------------------------------------------------------


@CHECKS
@given(st.integers(0, 10_000), BATCHES, st.integers(1, 9), TEMPERATURES)
def test_sigmoid_kd_and_bce_equal_the_equations(seed, batch, labels, temperature):
    student, teacher = _logits(seed, batch, labels), _logits(seed + 1, batch, labels)
    target = (torch.rand(batch, labels, generator=torch.Generator().manual_seed(seed)) < 0.5).float()
    mask = torch.arange(batch) % 3 != 1 if batch > 1 else torch.ones(1, dtype=torch.bool)
    _same_loss_and_gradient(
        lambda s: sigmoid_soft_target_loss(s, teacher.float(), temperature),
        lambda s: reference.sigmoid_soft_target_loss(s, teacher.double(), temperature),
        student,
    )
    _same_loss_and_gradient(
        lambda s: binary_cross_entropy(s, target, mask),
        lambda s: reference.binary_cross_entropy(s, target.double(), mask),
        student,
    )
    assert sigmoid_soft_target_loss(teacher, teacher, temperature).item() == pytest.approx(0.0, abs=1e-5)


@CHECKS
@given(st.integers(0, 10_000), BATCHES, st.integers(1, 4), st.sampled_from(["mse", "huber"]), st.floats(0.1, 3.0))
def test_regression_losses_equal_the_equations(seed, batch, targets, loss, delta):
    outputs, target = _logits(seed, batch, targets), _logits(seed + 1, batch, targets)
    mask = torch.arange(batch) % 4 != 2 if batch > 2 else torch.ones(batch, dtype=torch.bool)
    for m in (None, mask):
        _same_loss_and_gradient(
            lambda o, m=m: regression_loss(o, target.float(), m, loss, delta),
            lambda o, m=m: reference.regression_loss(o, target.double(), m, loss, delta),
            outputs,
        )


@CHECKS
@given(st.integers(0, 10_000), st.integers(1, 16), st.integers(1, 64), st.integers(100, 10_000))
def test_crd_nce_loss_equals_the_equation(seed, batch, negatives, num_examples):
    scores = torch.rand(batch, negatives + 1, generator=torch.Generator().manual_seed(seed)) * 0.01 + 1e-4
    expected = reference.nce_loss(scores.double(), num_examples)
    _assert_close(nce_loss(scores, num_examples), expected, rtol=1e-4, atol=1e-4)


# ---- weighted sums -----------------------------------------------------------------------------


@CHECKS
@given(st.integers(0, 10_000), st.floats(0.1, 3.0), st.floats(0.1, 3.0))
def test_objective_sum_weights_each_part_and_renames_clashing_terms(seed, kd_weight, ce_weight):
    student, teacher = _logits(seed, 6, 4), _logits(seed + 1, 6, 4)
    target = torch.randint(0, 4, (6,), generator=torch.Generator().manual_seed(seed))
    kd_options = {"alpha": 0.5, "temperature": 2.0}
    terms = build_objective([("kd", kd_options, kd_weight), ("ce", {}, ce_weight)])(
        StepOutputs(student, target, teacher)
    )
    assert set(terms) == {"kd", "ce", "ce.ce"}
    ce = reference.cross_entropy(student.double(), target)
    _assert_close(terms["kd"], kd_weight * 0.5 * reference.soft_target_loss(student.double(), teacher.double(), 2.0))
    _assert_close(terms["ce"], kd_weight * 0.5 * ce)
    _assert_close(terms["ce.ce"], ce_weight * ce)


def test_reference_log_softmax_is_the_textbook_formula():
    """The reference itself, against math on one row."""
    row = [1.0, 2.0, 0.5]
    expected = [v - math.log(sum(math.exp(u) for u in row)) for v in row]
    _assert_close(reference.log_softmax(torch.tensor([row], dtype=torch.float64))[0], torch.tensor(expected))


@CHECKS
@given(st.integers(0, 10_000), st.sampled_from([1e-5, 1e5]))
def test_rkd_angle_treats_near_duplicates_alike_at_any_scale(seed, scale):
    """The threshold below which an edge counts as zero is relative to the embeddings' size: a repeated
    example is a repeat whether the embedding is tiny or huge."""
    student, teacher = _embeddings(seed, 5, 3), _embeddings(seed + 1, 5, 4)
    student[4] = student[3]
    expected = rkd_angle(student, teacher)
    _assert_close(rkd_angle(student * scale, teacher), expected, rtol=1e-4, atol=1e-7)
