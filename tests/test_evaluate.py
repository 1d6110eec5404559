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
