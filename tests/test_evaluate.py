"""Metrics against hand computations and scikit-learn, and the latency procedure with a fake clock."""

import pytest
import torch
from sklearn.metrics import f1_score

from protege.evaluate import (
    confusion_matrix,
    cpu_latency_ms,
    per_class_accuracy,
    quality,
    reliability_bins,
    time_calls,
)

LOGITS = torch.tensor([[2.0, 0.5, 0.1], [0.2, 1.5, 0.3], [1.0, 0.9, 0.2], [0.1, 0.2, 0.9], [0.3, 1.2, 0.4]])
TARGET = torch.tensor([0, 1, 1, 2, 0])


def test_quality_matches_hand_computation_and_sklearn():
    q = quality(LOGITS, TARGET)
    predicted = LOGITS.argmax(-1)  # [0, 1, 0, 2, 1]
    assert q["accuracy"] == pytest.approx(3 / 5)
    assert q["macro_f1"] == pytest.approx(f1_score(TARGET.numpy(), predicted.numpy(), average="macro"))
    nll = -torch.log_softmax(LOGITS, -1)[torch.arange(5), TARGET].mean().item()
    assert q["nll"] == pytest.approx(nll)


def test_reliability_bins_reproduce_the_ece():
    bins = reliability_bins(LOGITS, TARGET)
    assert sum(b["count"] for b in bins) == 5 and len(bins) == 15
    ece = sum(b["count"] / 5 * abs(b["accuracy"] - b["confidence"]) for b in bins if b["count"])
    assert ece == pytest.approx(quality(LOGITS, TARGET)["ece"], abs=1e-6)
    confidence = LOGITS.softmax(-1).max(-1).values
    first = next(b for b in bins if b["count"])
    assert first["lower"] <= confidence.min().item() < first["upper"]


def test_confusion_matrix_rows_are_true_classes_and_an_absent_class_has_no_accuracy():
    logits = torch.tensor([[5.0, 0, 0, 0], [0, 5.0, 0, 0], [5.0, 0, 0, 0], [0, 0, 5.0, 0]])
    matrix = confusion_matrix(logits, torch.tensor([0, 1, 1, 2]))
    assert matrix == [[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    assert per_class_accuracy(matrix) == [1.0, 0.5, 1.0, None]


class FakeClock:
    """Time advances only when the timed function runs: each call costs the next duration in the list."""

    def __init__(self, durations):
        self.now = 0.0
        self.durations = iter(durations)
        self.calls = 0

    def __call__(self):
        return self.now

    def run(self):
        self.calls += 1
        self.now += next(self.durations)


def test_time_calls_warms_up_then_takes_the_median_block():
    # warm-up: 3 calls of 10 ms reach warmup_s; a block is then sized to 2 calls (20 ms);
    # five blocks follow, one of them slowed down 50-fold by "another process"
    durations = [0.01] * 3 + [0.01, 0.01] * 2 + [0.5, 0.5] + [0.01, 0.01] * 2
    clock = FakeClock(durations)
    timing = time_calls(clock.run, repeats=5, block_s=0.02, warmup_s=0.03, min_warmup_calls=3, clock=clock)
    assert timing.warmup_calls == 3
    assert timing.calls == 2
    assert clock.calls == 3 + 5 * 2
    assert timing.median_s == pytest.approx(0.01)  # the interrupted block does not move the median


def test_time_calls_keeps_warming_up_until_the_warmup_time_has_passed():
    clock = FakeClock([0.001] * 1000)
    timing = time_calls(clock.run, repeats=3, block_s=0.005, warmup_s=0.05, min_warmup_calls=3, clock=clock)
    assert timing.warmup_calls == 50 and timing.calls == 5


def test_time_calls_fits_the_number_of_blocks_to_the_budget():
    clock = FakeClock([0.001] * 10_000)
    kwargs = {"block_s": 0.002, "warmup_s": 0.01, "clock": clock}
    timing = time_calls(clock.run, budget_s=0.2, min_repeats=15, **kwargs)
    assert (timing.calls, timing.repeats) == (2, 100)  # 0.2 s of blocks of 2 ms
    timing = time_calls(clock.run, budget_s=0.01, min_repeats=15, **kwargs)
    assert timing.repeats == 15  # never fewer than min_repeats, whatever the budget


def test_cpu_latency_restores_the_thread_count():
    model = torch.nn.Linear(4, 2)
    before = torch.get_num_threads()
    assert cpu_latency_ms(model, (4,), batch_size=2, threads=2, repeats=3) > 0
    assert torch.get_num_threads() == before


def test_predicted_logits_come_in_order_in_eval_mode_and_leave_the_mode_alone():
    from protege.data.dataset import ArrayDataset
    from protege.evaluate import predict_logits

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.5), torch.nn.Linear(8, 3)).train()
    data = ArrayDataset(torch.randn(11, 4), torch.arange(11) % 3)
    logits = predict_logits(model, data, batch_size=4)  # three batches, the last one partial
    assert model.training  # the caller's mode is restored
    model.eval()
    with torch.no_grad():
        expected = model(data.x)
    torch.testing.assert_close(logits, expected)  # no dropout: eval mode, every example once, in order
    model.eval()
    predict_logits(model, data)
    assert not model.training
    torch.testing.assert_close(predict_logits(model, data), expected)  # default batch size: one batch


def test_agreement_counts_shared_top_classes_and_the_kl_from_the_teacher():
    from protege.evaluate import agreement

    student = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.0], [1.0, 2.0, 0.0]])
    teacher = torch.tensor([[1.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 4.0, 1.0]])
    result = agreement(student, teacher)
    assert result["agreement"] == pytest.approx(3 / 4)
    p, q = teacher.softmax(-1), student.softmax(-1)
    assert result["kl_to_teacher"] == pytest.approx((p * (p.log() - q.log())).sum(-1).mean().item(), rel=1e-5)
    assert agreement(student, student)["kl_to_teacher"] == pytest.approx(0.0, abs=1e-6)


def test_size_and_flops_of_a_known_model():
    from protege.evaluate import count_parameters, flops_per_example

    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2)).train()
    assert count_parameters(model) == 6 * 5 + 5 + 5 * 2 + 2
    assert flops_per_example(model, (6,)) == 2 * (6 * 5 + 5 * 2)  # a multiply and an add per weight
    assert not model.training  # counted as evaluation runs it


def test_reliability_bins_edges_hold_their_examples():
    """Confidence exactly 1 joins the last bin; each bin's [lower, upper) holds the confidences counted in it."""
    logits = torch.tensor([[100.0, 0.0], [0.0, 0.4], [0.3, 0.0], [2.0, 0.0]])
    target = torch.tensor([0, 0, 0, 1])
    bins = reliability_bins(logits, target, bins=4)
    assert [b["lower"] for b in bins] == [0.0, 0.25, 0.5, 0.75] and [b["upper"] for b in bins] == [0.25, 0.5, 0.75, 1.0]
    assert [b["count"] for b in bins] == [0, 0, 2, 2]
    assert bins[0]["confidence"] is None and bins[0]["accuracy"] is None
    confidence = logits.softmax(-1).max(-1).values
    assert bins[2]["confidence"] == pytest.approx(confidence[1:3].mean().item())
    assert bins[2]["accuracy"] == pytest.approx(0.5) and bins[3]["accuracy"] == pytest.approx(0.5)
    assert bins[3]["confidence"] == pytest.approx(((confidence[0] + confidence[3]) / 2).item())


def test_quality_reads_soft_targets_at_their_most_probable_class_and_matches_torchmetrics_ece():
    from torchmetrics.functional.classification import multiclass_calibration_error

    soft = torch.nn.functional.one_hot(TARGET, 3).float() * 0.8 + 0.2 / 3
    assert quality(LOGITS, soft) == pytest.approx(quality(LOGITS, TARGET))
    ece = multiclass_calibration_error(LOGITS.softmax(-1), TARGET, 3, n_bins=15, norm="l1").item()
    by_hand = sum(
        b["count"] / 5 * abs(b["accuracy"] - b["confidence"]) for b in reliability_bins(LOGITS, TARGET) if b["count"]
    )
    assert quality(LOGITS, TARGET)["ece"] == pytest.approx(ece) == pytest.approx(by_hand, abs=1e-6)


class LateClock(FakeClock):
    """A fake clock whose time does not start at zero (a real perf_counter never does)."""

    def __init__(self, durations, start=100.0):
        super().__init__(durations)
        self.now = start


def test_time_calls_defaults_warm_up_for_fifty_milliseconds_and_at_least_three_calls():
    clock = LateClock([0.01] * 10_000)
    timing = time_calls(clock.run, repeats=1, clock=clock)
    assert timing.warmup_calls == 5 and timing.calls == 1  # 5 × 10 ms reach 50 ms; one call fills a block
    slow = LateClock([1.0] * 100)
    assert time_calls(slow.run, repeats=1, clock=slow).warmup_calls == 3


def test_time_calls_caps_the_number_of_blocks_at_a_thousand():
    clock = LateClock([1e-6] * 2_000_000)
    timing = time_calls(clock.run, budget_s=1.0, clock=clock)
    assert timing.repeats == 1000  # 1 s of 0.5 ms blocks would be 2,000


def test_confusion_matrix_of_more_examples_than_classes():
    logits = torch.tensor([[3.0, 0.0], [0.0, 3.0], [3.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
    assert confusion_matrix(logits, torch.tensor([0, 1, 1, 0, 0])) == [[2, 1], [1, 1]]


def test_a_confidence_on_a_bin_edge_goes_up_and_a_low_one_stays_in_the_first_bin():
    two_way_tie = torch.zeros(1, 2)  # confidence exactly 0.5: the bin [0.5, 0.75)
    assert [b["count"] for b in reliability_bins(two_way_tie, torch.tensor([0]), bins=4)] == [0, 0, 1, 0]
    five_way_tie = torch.zeros(1, 5)  # confidence 0.2, below the first edge 0.25
    assert [b["count"] for b in reliability_bins(five_way_tie, torch.tensor([0]), bins=4)] == [1, 0, 0, 0]
