"""Per-epoch training sums: what the epoch record reports, and what a checkpoint keeps mid-epoch."""

import pytest
import torch

from protege.running import RunningSums


def _batch(logits_rows, target, loss, **terms):
    return torch.tensor(loss), {k: torch.tensor(v) for k, v in terms.items()}, torch.tensor(logits_rows), target


def test_sums_weight_by_batch_size_and_count_only_labelled_hits():
    sums = RunningSums()
    # batch 1: 3 examples, argmax 0, 1, 1; targets 0, 0, unlabeled (-1): 1 correct of 2 labelled
    sums.add(*_batch([[2.0, 1.0], [0.0, 3.0], [0.0, 1.0]], torch.tensor([0, 0, -1]), 0.5, kd=0.25, ce=0.25))
    # batch 2: 1 example, argmax 1 = target 1
    sums.add(*_batch([[0.0, 1.0]], torch.tensor([1]), 2.0, kd=1.5, ce=0.5))
    totals = sums.totals()
    assert totals == pytest.approx(
        {
            "examples": 4.0,
            "loss": 3 * 0.5 + 2.0,
            "term.kd": 3 * 0.25 + 1.5,
            "term.ce": 3 * 0.25 + 0.5,
            "correct": 2.0,
            "labeled": 3.0,
        }
    )


def test_a_term_that_appears_mid_epoch_is_summed_from_then_on():
    sums = RunningSums()
    sums.add(*_batch([[1.0, 0.0]], torch.tensor([0]), 1.0, ce=1.0))
    sums.add(*_batch([[1.0, 0.0], [1.0, 0.0]], torch.tensor([0, 1]), 3.0, ce=2.0, l2sp=1.0))
    sums.add(*_batch([[1.0, 0.0]], torch.tensor([0]), 1.0, ce=1.0))
    totals = sums.totals()
    assert totals["term.ce"] == pytest.approx(1.0 + 4.0 + 1.0)
    assert totals["term.l2sp"] == pytest.approx(2.0)
    assert totals["loss"] == pytest.approx(1.0 + 6.0 + 1.0)


def test_checkpoint_round_trip_continues_the_same_sums():
    sums = RunningSums()
    sums.add(*_batch([[1.0, 0.0], [0.0, 1.0]], torch.tensor([0, 0]), 0.7, kd=0.7))
    stored = {k: v.clone() for k, v in sums.as_dict().items()}
    assert set(stored) == {"examples", "loss", "correct", "labeled", "term.kd"}
    restored = RunningSums.from_dict(stored)
    for s in (sums, restored):
        s.add(*_batch([[0.0, 1.0]], torch.tensor([1]), 0.1, kd=0.1))
    assert restored.totals() == pytest.approx(sums.totals())
    assert RunningSums.from_dict({}).totals() == {"examples": 0.0}


def test_totals_go_through_the_reduction_once():
    sums = RunningSums()
    sums.add(*_batch([[1.0, 0.0]], torch.tensor([0]), 1.0, ce=1.0))
    calls = []

    def doubled(vector):
        calls.append(vector.shape)
        return vector * 2

    assert sums.totals(doubled)["examples"] == 2.0 and len(calls) == 1


def test_a_metric_without_names_round_trips_its_sums_in_numeric_order():
    """Macro-F1 over 4 labels sums 12 unnamed values (tp, fp, fn per label): a checkpoint stores them as
    macro_f1.0 ... macro_f1.11, and they must come back in that order, not as strings sort (0, 1, 10, 11, 2...)."""
    from protege.metrics.multilabel import MACRO_F1

    generator = torch.Generator().manual_seed(0)
    outputs = torch.randn(16, 4, generator=generator)
    target = (torch.rand(16, 4, generator=generator) > 0.5).float()
    sums = RunningSums(MACRO_F1)
    sums.add(torch.tensor(0.3), {"bce": torch.tensor(0.3)}, outputs, target)
    stored = {k: v.clone() for k, v in sums.as_dict().items()}
    assert {f"macro_f1.{i}" for i in range(12)} <= set(stored)
    restored = RunningSums.from_dict(stored, MACRO_F1)
    assert torch.equal(restored.counts, sums.counts)
    assert restored.metric_value(restored.totals()) == pytest.approx(sums.metric_value(sums.totals()))


def test_a_checkpoint_that_lacks_the_metrics_sums_is_one_line_naming_them():
    from protege.errors import CheckpointError
    from protege.metrics.multilabel import MACRO_F1

    with pytest.raises(CheckpointError, match=r"lack correct, labeled; delete the checkpoint"):
        RunningSums.from_dict({"examples": torch.tensor(2.0), "loss": torch.tensor(1.0)})
    with pytest.raises(CheckpointError, match=r"lack labeled; delete"):
        RunningSums.from_dict({"examples": torch.tensor(2.0), "loss": torch.tensor(1.0), "correct": torch.tensor(1.0)})
    with pytest.raises(CheckpointError, match=r"lack the sums of macro_f1; delete"):
        RunningSums.from_dict({"examples": torch.tensor(2.0), "loss": torch.tensor(1.0)}, MACRO_F1)


def test_no_metric_value_without_its_sums_or_without_a_labelled_example():
    sums = RunningSums()
    assert sums.metric_value({"examples": 0.0}) is None  # totals of an epoch that saw nothing
    sums.add(*_batch([[1.0, 0.0], [0.0, 1.0]], torch.tensor([-1, -1]), 0.2, kd=0.2))
    assert sums.metric_value(sums.totals()) is None  # nothing labelled: no accuracy rather than NaN


def test_a_term_that_appears_after_batches_without_terms_is_aligned():
    sums = RunningSums()
    sums.add(*_batch([[1.0, 0.0]], torch.tensor([0]), 1.0))  # a step that returned its loss alone
    sums.add(*_batch([[1.0, 0.0], [1.0, 0.0]], torch.tensor([0, 1]), 3.0, ce=2.0))
    totals = sums.totals()
    assert totals["loss"] == pytest.approx(1.0 + 6.0) and totals["term.ce"] == pytest.approx(4.0)
