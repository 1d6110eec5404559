"""The robust steps' loss terms against hand computations on two examples of three classes: the model is
a fixed linear map, the attack is replaced by a known perturbation, and every softmax, log and KL below is
written out by hand. The loss each step's attack climbs is checked the same way."""

import math

import pytest
import torch
from torch import nn

from protege.engine.step import TEACHER_LOGITS
from protege.robust.attacks import Attack
from protege.robust.space import InputSpace
from protege.robust.steps import ARDStep, PGDStep, RSLADStep, TRADESStep

X = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
SHIFT = torch.tensor([[0.0, 0.5], [0.5, 0.0]])
Y = torch.tensor([0, 2])
TEACHER = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
WEIGHT = [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]  # logits = x Wᵀ


def _model() -> nn.Module:
    model = nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor(WEIGHT))
    return model


def _logits(x: list[float]) -> list[float]:
    return [sum(w * v for w, v in zip(row, x, strict=True)) for row in WEIGHT]


def _log_softmax(z: list[float], t: float = 1.0) -> list[float]:
    top = math.log(sum(math.exp(v / t) for v in z))
    return [v / t - top for v in z]


def _kl(p_logits: list[float], q_logits: list[float], t: float = 1.0) -> float:
    """KL(softmax(p/t) ‖ softmax(q/t))."""
    log_p, log_q = _log_softmax(p_logits, t), _log_softmax(q_logits, t)
    return sum(math.exp(a) * (a - b) for a, b in zip(log_p, log_q, strict=True))


def _ce(z: list[float], label: int) -> float:
    return -_log_softmax(z)[label]


NATURAL = [_logits(x) for x in X.tolist()]
ADVERSARIAL = [_logits(x) for x in (X + SHIFT).tolist()]


def _run(step, monkeypatch):
    """The step on the tiny batch, its attack replaced by x + SHIFT; returns the terms and the attack's loss."""
    seen = {}

    def perturb(model, run, x, loss_fn, start=None):
        seen["loss_fn"] = loss_fn
        return x + SHIFT

    monkeypatch.setattr(step, "perturb", perturb)
    batch = {"x": X, "y": Y, "labeled": torch.ones(2, dtype=torch.bool), TEACHER_LOGITS: TEACHER}
    result = step(_model(), batch, None)
    return {k: v.item() for k, v in result.terms.items()}, seen["loss_fn"], result


ATTACK, SPACE = Attack(0.5), InputSpace(-5.0, 5.0)


def test_pgd_training_is_the_cross_entropy_on_the_adversarial_batch(monkeypatch):
    terms, attacked, result = _run(PGDStep(ATTACK, SPACE), monkeypatch)
    assert terms == pytest.approx({"adv_ce": (_ce(ADVERSARIAL[0], 0) + _ce(ADVERSARIAL[1], 2)) / 2}, rel=1e-5)
    assert attacked(torch.tensor(NATURAL)).item() == pytest.approx(_ce(NATURAL[0], 0) + _ce(NATURAL[1], 2), rel=1e-5)
    assert torch.allclose(result.outputs, torch.tensor(ADVERSARIAL))  # training accuracy is the robust one


def test_trades_is_cross_entropy_plus_beta_times_the_kl_to_the_natural_prediction(monkeypatch):
    terms, attacked, _ = _run(TRADESStep(ATTACK, SPACE, beta=3.0), monkeypatch)
    ce = (_ce(NATURAL[0], 0) + _ce(NATURAL[1], 2)) / 2
    kl = (_kl(NATURAL[0], ADVERSARIAL[0]) + _kl(NATURAL[1], ADVERSARIAL[1])) / 2
    assert terms == pytest.approx({"ce": ce, "trades": 3.0 * kl}, rel=1e-5)
    # the attack climbs KL(f(x) ‖ f(x')) from the natural prediction
    expected = _kl(NATURAL[0], ADVERSARIAL[0]) + _kl(NATURAL[1], ADVERSARIAL[1])
    assert attacked(torch.tensor(ADVERSARIAL)).item() == pytest.approx(expected, rel=1e-5)


def test_trades_regulariser_sends_gradients_through_both_predictions(monkeypatch):
    step = TRADESStep(ATTACK, SPACE, beta=1.0)
    monkeypatch.setattr(step, "perturb", lambda model, run, x, loss_fn, start=None: x + SHIFT)
    model = _model()
    step(model, {"x": X, "y": Y}, None).terms["trades"].backward()
    both = model.weight.grad.clone()
    natural = torch.tensor(NATURAL).softmax(-1)  # the same KL with the natural side held fixed
    log_q = (X + SHIFT) @ model.weight.T
    model.weight.grad = None
    (natural * (natural.log() - log_q.log_softmax(-1))).sum(-1).mean().backward()
    assert not torch.allclose(both, model.weight.grad)


def test_ard_follows_the_teachers_soft_labels_on_the_adversarial_inputs(monkeypatch):
    terms, attacked, _ = _run(ARDStep(ATTACK, SPACE, alpha=0.7, temperature=2.0), monkeypatch)
    ce = (_ce(NATURAL[0], 0) + _ce(NATURAL[1], 2)) / 2
    kl = (_kl(TEACHER[0].tolist(), ADVERSARIAL[0], 2.0) + _kl(TEACHER[1].tolist(), ADVERSARIAL[1], 2.0)) / 2
    assert terms == pytest.approx({"ce": 0.3 * ce, "ard": 0.7 * 4.0 * kl}, rel=1e-5)
    # ARD's attack maximises the student's cross-entropy with the labels
    assert attacked(torch.tensor(NATURAL)).item() == pytest.approx(_ce(NATURAL[0], 0) + _ce(NATURAL[1], 2), rel=1e-5)


def test_rslad_replaces_every_label_by_the_teachers_soft_label(monkeypatch):
    terms, attacked, _ = _run(RSLADStep(ATTACK, SPACE, adversarial_weight=0.75), monkeypatch)
    teacher = TEACHER.tolist()
    adversarial = (_kl(teacher[0], ADVERSARIAL[0]) + _kl(teacher[1], ADVERSARIAL[1])) / 2
    natural = (_kl(teacher[0], NATURAL[0]) + _kl(teacher[1], NATURAL[1])) / 2
    assert terms == pytest.approx({"rslad_adv": 0.75 * adversarial, "rslad_nat": 0.25 * natural}, rel=1e-5)
    assert attacked(torch.tensor(ADVERSARIAL)).item() == pytest.approx(2 * adversarial, rel=1e-5)


def test_the_defaults_are_the_papers_and_the_distilling_steps_ask_for_a_teacher():
    assert TRADESStep(ATTACK, SPACE).beta == 6.0
    ard = ARDStep(ATTACK, SPACE)
    assert (ard.alpha, ard.temperature) == (1.0, 30.0)
    assert RSLADStep(ATTACK, SPACE).adversarial_weight == pytest.approx(5 / 6)
    assert ard.needs_teacher and RSLADStep(ATTACK, SPACE).needs_teacher
    assert not PGDStep(ATTACK, SPACE).needs_teacher and not TRADESStep(ATTACK, SPACE).needs_teacher


def test_kl_attacks_start_off_x_without_a_random_start():
    still = Attack(0.5, random_start=False)
    assert TRADESStep(still, SPACE).small_start() == "small" and RSLADStep(still, SPACE).small_start() == "small"
    assert TRADESStep(ATTACK, SPACE).small_start() is None


def test_a_step_trains_a_users_model_on_their_loader():
    """The Python API of docs/robust.md: (inputs, targets) batches from a DataLoader, a user's module."""
    from torch.utils.data import DataLoader, TensorDataset

    from protege.config import TrainConfig
    from protege.data.build import load_data
    from protege.engine import fit
    from protege.robust.evaluate import robust_accuracy

    torch.manual_seed(0)
    data = load_data("digits", seed=0)
    loader = DataLoader(TensorDataset(data.train.x, data.train.y), batch_size=64, shuffle=True)
    space = InputSpace(0.0, 1.0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    config = TrainConfig(epochs=4, lr=0.01, restore_best=False)
    result = fit(model, loader, PGDStep(Attack(0.1, steps=3), space), config)
    assert "train_adv_ce" in result.final
    robust = robust_accuracy(result.model, data.test, space, Attack(0.1, steps=10), restarts=2)
    assert 0.3 < robust < (result.model(data.test.x).argmax(1) == data.test.y).float().mean()
