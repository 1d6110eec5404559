import pytest
import torch
from tests.conftest import FixedLogits
from torch import nn
from torch.nn import functional as F

from protege.engine.step import TEACHER_LOGITS
from protege.unlearning.evaluation import membership_auc
from protege.unlearning.sisa import MajorityVote, ShardPlan
from protege.unlearning.steps import BadTeacherStep, NegGradStep, ScrubStep, TwoTeachers

LOGITS = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0], [0.0, 0.0, 3.0], [1.0, -1.0, 0.5]])
TEACHER = torch.tensor([[1.0, 0.5, 0.0], [0.0, 2.0, -1.0], [0.2, 0.1, 1.0], [2.0, 0.0, 0.0]])
Y = torch.tensor([0, 1, 2, 2])
FORGET = torch.tensor([False, False, True, True])


def _batch(**extra):
    return {"x": torch.arange(4), "y": Y, "labeled": torch.ones(4, dtype=torch.bool), "forget": FORGET, **extra}


def _kl(s, t, temperature):
    return temperature**2 * F.kl_div(
        F.log_softmax(s / temperature, 1), F.softmax(t / temperature, 1), reduction="batchmean"
    )


def test_neggrad_descends_on_retained_and_ascends_on_forgotten_examples():
    result = NegGradStep(beta=0.8, cap=100.0)(FixedLogits(LOGITS.clone()), _batch(), None)
    retain = F.cross_entropy(LOGITS[:2], Y[:2])
    forget = F.cross_entropy(LOGITS[2:], Y[2:])
    assert result.terms["retain_ce"].item() == pytest.approx(0.8 * retain.item(), rel=1e-5)
    assert result.terms["forget_ce"].item() == pytest.approx(-0.2 * forget.item(), rel=1e-5)
    capped = NegGradStep(beta=0.8, cap=0.1)(FixedLogits(LOGITS.clone()), _batch(), None)
    per_example = F.cross_entropy(LOGITS[2:], Y[2:], reduction="none").clamp(max=0.1)  # one is under the cap
    assert capped.terms["forget_ce"].item() == pytest.approx(-0.2 * per_example.mean().item(), rel=1e-5)


class _Run:
    class state:  # a stand-in for the run's state
        epoch = 0


def test_scrub_stays_close_on_retained_and_moves_away_on_forgotten_examples():
    step = ScrubStep(alpha=0.5, gamma=0.9, temperature=2.0, max_epochs=1, forget_weight=0.25)
    result = step(FixedLogits(LOGITS.clone()), _batch(**{TEACHER_LOGITS: TEACHER}), _Run())
    assert result.terms["retain_kl"].item() == pytest.approx(0.5 * _kl(LOGITS[:2], TEACHER[:2], 2.0).item(), rel=1e-5)
    assert result.terms["retain_ce"].item() == pytest.approx(0.9 * F.cross_entropy(LOGITS[:2], Y[:2]).item(), rel=1e-5)
    assert result.terms["forget_kl"].item() == pytest.approx(-0.25 * _kl(LOGITS[2:], TEACHER[2:], 2.0).item(), rel=1e-5)
    _Run.state.epoch = 1  # past the "max" epochs: only the retained terms
    assert "forget_kl" not in step(FixedLogits(LOGITS.clone()), _batch(**{TEACHER_LOGITS: TEACHER}), _Run()).terms
    _Run.state.epoch = 0


def test_bad_teacher_distils_the_competent_teacher_on_retained_and_the_incompetent_on_forgotten():
    bad = torch.zeros(4, 3)
    result = BadTeacherStep(1.0)(
        FixedLogits(LOGITS.clone()), _batch(**{TEACHER_LOGITS: torch.cat([TEACHER, bad], 1)}), None
    )
    assert result.terms["competent_kl"].item() == pytest.approx(_kl(LOGITS[:2], TEACHER[:2], 1.0).item(), rel=1e-5)
    assert result.terms["incompetent_kl"].item() == pytest.approx(_kl(LOGITS[2:], bad[2:], 1.0).item(), rel=1e-5)
    pair = TwoTeachers(nn.Linear(2, 3), nn.Linear(2, 3))
    assert pair(torch.zeros(5, 2)).shape == (5, 6)


def test_membership_auc_is_half_for_alike_losses_and_one_for_separated():
    assert membership_auc(torch.tensor([0.1, 0.2]), torch.tensor([1.0, 2.0, 3.0])) == 1.0
    assert membership_auc(torch.tensor([1.0, 1.0]), torch.tensor([1.0, 1.0])) == 0.5
    assert membership_auc(torch.tensor([3.0]), torch.tensor([0.5])) == 0.0


def test_shards_and_slices_cover_the_training_split_once():
    plan = ShardPlan.cut(23, shards=3, slices=2, seed=0)
    seen = torch.cat([plan.upto(s, 2) for s in range(3)])
    assert sorted(seen.tolist()) == list(range(23))
    first = plan.slices[1][1][0]
    assert plan.first_touched(1, first.unsqueeze(0)) == 2 and plan.first_touched(0, first.unsqueeze(0)) is None
    assert first.item() not in plan.upto(1, 2, without=first.unsqueeze(0)).tolist()


def test_majority_vote_counts_top_classes():
    votes = [
        FixedLogits(torch.tensor([[3.0, 0.0, 0.0]])),
        FixedLogits(torch.tensor([[0.0, 2.0, 0.0]])),
        FixedLogits(torch.tensor([[0.0, 5.0, 0.0]])),
    ]
    out = MajorityVote(votes)(torch.zeros(1))
    assert out.argmax(1).item() == 1 and out.exp().sum().item() == pytest.approx(1.0, rel=1e-3)
