"""RKD (Park et al. 2019) and PKT (Passalis & Tefas 2018) against hand computations, and their taps."""

import itertools
import math

import pytest
import torch
from tests.conftest import make_blobs

from protege.config import TrainConfig
from protege.engine import fit
from protege.errors import ModelError
from protege.models.builtin import mlp
from protege.objectives import build_objective
from protege.objectives.relational import pkt_loss, rkd_angle, rkd_distance

S = [[0.0, 1.0], [2.0, 0.5], [1.0, -1.0]]
T = [[1.0, 0.0, 0.5], [0.0, 2.0, 1.0], [-1.0, 0.5, 0.0]]


def _huber(a, b):
    d = abs(a - b)
    return 0.5 * d * d if d < 1 else d - 0.5


def _dist(x, i, j):
    return math.sqrt(sum((a - b) ** 2 for a, b in zip(x[i], x[j], strict=True)))


def test_rkd_distance_matches_eq_4_by_hand():
    pairs = [(i, j) for i in range(3) for j in range(3) if i != j]
    mu_s = sum(_dist(S, i, j) for i, j in pairs) / len(pairs)
    mu_t = sum(_dist(T, i, j) for i, j in pairs) / len(pairs)
    expected = sum(_huber(_dist(S, i, j) / mu_s, _dist(T, i, j) / mu_t) for i, j in pairs) / len(pairs)
    assert rkd_distance(torch.tensor(S), torch.tensor(T)).item() == pytest.approx(expected, rel=1e-5)


def _cos_angle(x, i, j, k):
    if i == j or k == j:
        return 0.0
    e1 = [a - b for a, b in zip(x[i], x[j], strict=True)]
    e2 = [a - b for a, b in zip(x[k], x[j], strict=True)]
    n1, n2 = math.sqrt(sum(v * v for v in e1)), math.sqrt(sum(v * v for v in e2))
    return sum(a * b for a, b in zip(e1, e2, strict=True)) / (n1 * n2)


def test_rkd_angle_matches_eq_5_by_hand():
    triplets = list(itertools.product(range(3), repeat=3))
    expected = sum(_huber(_cos_angle(S, i, j, k), _cos_angle(T, i, j, k)) for i, j, k in triplets) / 27
    assert rkd_angle(torch.tensor(S), torch.tensor(T)).item() == pytest.approx(expected, rel=1e-5)


def test_rkd_is_zero_for_a_scaled_copy_of_the_teacher():
    t = torch.tensor(T)
    assert rkd_distance(3 * t, t).item() == pytest.approx(0, abs=1e-6)
    assert rkd_angle(3 * t + 1, t).item() == pytest.approx(0, abs=1e-6)


def test_pkt_matches_the_kernel_definition_by_hand():
    def conditional(x):
        unit = [[v / math.sqrt(sum(w * w for w in row)) for v in row] for row in x]
        k = [[(sum(a * b for a, b in zip(u, v, strict=True)) + 1) / 2 for v in unit] for u in unit]
        return [[v / sum(row) for v in row] for row in k]

    p_s, p_t = conditional(S), conditional(T)
    expected = sum(p_t[i][j] * math.log(p_t[i][j] / p_s[i][j]) for i in range(3) for j in range(3)) / 9
    assert pkt_loss(torch.tensor(S), torch.tensor(T)).item() == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize(("name", "cache"), [("rkd", "auto"), ("pkt", "off")])
def test_training_taps_both_models_and_removes_the_hooks(name, cache):
    torch.manual_seed(0)
    teacher = mlp((6,), 3, hidden=32)
    student = mlp((6,), 3, hidden=4)
    objective = build_objective([(name, {}, 1.0)])
    result = fit(
        student, make_blobs(96), objective, TrainConfig(epochs=3, lr=0.02), teacher=teacher, teacher_cache=cache
    )
    assert result.teacher_mode == ("cached (memory)" if cache == "auto" else "online")
    assert any(key.startswith(f"train_{name}") for key in result.final)
    assert all(not m._forward_hooks for m in [*student.modules(), *teacher.modules()])


@pytest.mark.parametrize("side", ["student_layer", "teacher_layer"])
def test_a_wrong_layer_is_named_before_training_and_leaves_no_hooks(side):
    student, teacher = mlp((6,), 3, hidden=4), mlp((6,), 3)
    objective = build_objective([("rkd", {side: "featurez"}, 1.0)])
    with pytest.raises(ModelError, match=r"no module .featurez.*closest: features"):
        fit(student, make_blobs(48), objective, TrainConfig(epochs=1), teacher=teacher)
    assert all(not m._forward_hooks for m in [*student.modules(), *teacher.modules()])
