"""The default step against the objective it wraps, computed by hand: the step must hand the objective
the student's logits and tapped layers, the teacher's logits and features the loop attached, the
examples' positions and the batch's own labelled mask, and size the objective's parts on the run."""

import contextlib
import copy
from types import SimpleNamespace

import pytest
import torch

from protege.engine import RDropStep, SupervisedStep
from protege.engine.step import TEACHER_FEATURES, TEACHER_LOGITS
from protege.models.builtin import mlp
from protege.objectives import StepOutputs, build_objective


def _mlp(seed: int, hidden: int, dropout: float = 0.0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return mlp((6,), 3, hidden=hidden, dropout=dropout)


def _run(student, teacher, examples: int) -> SimpleNamespace:
    """What a step reads of a TrainingRun: the models, the training set's size and the device."""
    return SimpleNamespace(
        model=student,
        teacher=teacher,
        loader=SimpleNamespace(dataset=range(examples)),
        accelerator=SimpleNamespace(device=torch.device("cpu")),
    )


def _batch(teacher: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Eight examples; the last two have class ids but are masked out (a replayed or forgotten example),
    so only the batch's mask, not the class ids, says they are unlabelled."""
    torch.manual_seed(5)
    x = torch.randn(8, 6)
    with torch.no_grad():
        teacher_features = teacher.forward_features(x)
        teacher_logits = teacher.forward_head(teacher_features)
    return {
        "x": x,
        "y": torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]),
        "labeled": torch.tensor([True] * 6 + [False] * 2),
        "index": torch.tensor([3, 9, 4, 0, 7, 1, 8, 2]),
        TEACHER_LOGITS: teacher_logits,
        TEACHER_FEATURES: {"features": teacher_features},
    }


def test_the_step_gives_the_objective_every_input_it_names():
    student, teacher = _mlp(0, 8), _mlp(1, 16)
    objective = build_objective(
        [("kd", {}, 1.0), ("fitnet", {"ce_weight": 0.0}, 1.0), ("crd", {"feat_dim": 8, "negatives": 4}, 1.0)]
    )
    step = SupervisedStep(objective)
    assert step.needs_teacher and step.teacher_layers == ("features",)  # the loop taps the teacher there
    run = _run(student, teacher, examples=10)
    with contextlib.ExitStack() as cleanup:
        step.open(run, cleanup)
        step.setup(run, torch.randn(2, 6))
        assert len(objective.parts[2].memory_student) == 10  # CRD's bank: one row per training example
        by_hand = copy.deepcopy(objective)  # CRD updates its banks on every call
        batch = _batch(teacher)
        torch.manual_seed(11)
        result = step(student, batch, run)
    logits = student(batch["x"])
    expected_outputs = StepOutputs(
        logits,
        batch["y"],
        batch[TEACHER_LOGITS],
        {"features": student.forward_features(batch["x"])},
        batch[TEACHER_FEATURES],
        index=batch["index"],
        labeled=batch["labeled"],
    )
    torch.manual_seed(11)
    expected = by_hand(expected_outputs)
    assert set(result.terms) == set(expected) and {"kd", "hint", "crd"} <= set(expected)
    for name, value in expected.items():
        torch.testing.assert_close(result.terms[name], value, msg=name)
    torch.testing.assert_close(result.outputs, logits)
    assert torch.equal(result.target, batch["y"]) and torch.equal(result.labeled, batch["labeled"])


def test_the_mask_decides_what_counts_as_labelled():
    """The same batch with every example labelled gives another cross-entropy: the step read the mask."""
    student, teacher = _mlp(0, 8), _mlp(1, 16)
    step = SupervisedStep(build_objective([("kd", {"alpha": 0.5}, 1.0)]))
    batch = _batch(teacher)
    masked = step(student, batch, run=None).terms
    every = step(student, {**batch, "labeled": torch.ones(8, dtype=torch.bool)}, run=None).terms
    assert not torch.allclose(sum(masked.values()), sum(every.values()))


def _rdrop_batch() -> dict[str, torch.Tensor]:
    """Soft targets (mixup's kind) and a mask narrower than the targets: only the mask says which count."""
    torch.manual_seed(2)
    return {
        "x": torch.randn(8, 6),
        "y": torch.softmax(torch.randn(8, 3), -1),
        "labeled": torch.tensor([True, False, True, True, False, True, True, True]),
    }


def _by_hand(model, batch, alpha: float, seed: int):
    torch.manual_seed(seed)
    first, second = model(batch["x"]), model(batch["x"])
    keep = batch["labeled"]

    def ce(logits):
        return -(batch["y"][keep] * logits[keep].log_softmax(-1)).sum(-1).mean()

    p, q = first.softmax(-1), second.softmax(-1)
    kl = 0.5 * ((p * (p.log() - q.log())).sum(-1).mean() + (q * (q.log() - p.log())).sum(-1).mean())
    return first, 0.5 * (ce(first) + ce(second)), alpha * kl


@pytest.mark.parametrize("alpha", [None, 0.0, 0.7])
def test_rdrop_on_soft_targets_with_a_mask_follows_its_equation(alpha):
    model = _mlp(0, 16, dropout=0.3).train()
    batch = _rdrop_batch()
    step = RDropStep() if alpha is None else RDropStep(alpha=alpha)
    torch.manual_seed(4)
    result = step(model, batch, run=None)
    first, ce, kl = _by_hand(model, batch, 1.0 if alpha is None else alpha, seed=4)  # alpha defaults to 1
    torch.testing.assert_close(result.terms["ce"], ce)
    torch.testing.assert_close(result.terms["rdrop"], kl)
    torch.testing.assert_close(result.outputs, first)  # the metrics read the first pass
    assert torch.equal(result.target, batch["y"]) and torch.equal(result.labeled, batch["labeled"])


def test_rdrop_refuses_a_negative_weight():
    with pytest.raises(ValueError, match=r"alpha must be non-negative, got -0\.5"):
        RDropStep(alpha=-0.5)


class _Seen(torch.nn.Module):
    """An objective that keeps what the step handed it (a user's own objective reads these fields)."""

    needs_teacher, needs_setup = False, False
    student_layers, teacher_layers = (), ()

    def forward(self, out: StepOutputs) -> dict[str, torch.Tensor]:
        self.out = out
        return {"zero": out.logits.sum() * 0}


def test_without_a_teacher_the_objective_sees_no_teacher_outputs_and_a_narrower_mask_wins():
    seen = _Seen()
    step = SupervisedStep(seen)
    student = _mlp(0, 8)
    batch = {"x": torch.randn(4, 6), "y": torch.tensor([0, 1, 2, 0]), "labeled": torch.ones(4, dtype=torch.bool)}
    step(student, batch, run=None)
    assert seen.out.teacher_logits is None and seen.out.teacher_features == {} and seen.out.features == {}
    narrower = torch.tensor([True, False, True, False])  # DER leaves the replayed examples out of the objective
    outputs = step.step_outputs(student(batch["x"]), batch, narrower)
    assert torch.equal(outputs.labeled, narrower)
    assert torch.equal(step.step_outputs(student(batch["x"]), batch).labeled, batch["labeled"])
