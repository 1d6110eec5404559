"""What a model kept and what it costs: accuracy, macro-F1, NLL, calibration, per-class accuracy, the
confusion matrix, agreement with the teacher, size, FLOPs and CPU latency."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from protege.data.dataset import ArrayDataset
from protege.data.lengths import cut_padding, in_order, inference_batches, pad_id_of
from protege.metrics import metrics_of
from protege.metrics.classification import CALIBRATION_BINS

LATENCY_MIN_REPEATS = 15
LATENCY_BLOCK_S = 0.0005
LATENCY_BUDGET_S = 0.3
"""Latency is the median of at least 15 timed blocks of about 0.5 ms, about 0.3 s of timing in all: short
blocks keep most samples free of a preemption on a busy machine, and the median drops the rest."""


@torch.no_grad()
def predict_logits(model: nn.Module, dataset: ArrayDataset, batch_size: int = 512) -> torch.Tensor:
    """Logits for every example of ``dataset``, in order, on the CPU, in eval mode (token ids read grouped
    by length, protege.data.lengths)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out, indices = [], []
    for batch in inference_batches(model, dataset, batch_size):
        out.append(model(batch["x"].to(device)).float().cpu())
        indices.append(batch["index"])
    model.train(was_training)
    return in_order(out, indices)


def quality(logits: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """Top-1 accuracy, macro-F1, mean negative log-likelihood and expected calibration error: the
    classification metrics of the registry (protege.metrics, torchmetrics underneath)."""
    return {metric.name: metric.compute(logits, target) for metric in metrics_of("classification")}


def confusion_matrix(logits: torch.Tensor, target: torch.Tensor) -> list[list[int]]:
    """Counts of (true class, predicted class): rows are the true classes."""
    from torchmetrics.functional.classification import multiclass_confusion_matrix

    return multiclass_confusion_matrix(logits, target, logits.shape[-1]).tolist()


def per_class_accuracy(matrix: list[list[int]]) -> list[float | None]:
    """Recall of each class from the confusion matrix; None for a class absent from the data."""
    return [row[i] / sum(row) if sum(row) else None for i, row in enumerate(matrix)]


def reliability_bins(logits: torch.Tensor, target: torch.Tensor, bins: int = CALIBRATION_BINS) -> list[dict]:
    """The reliability diagram: for each equal-width confidence bin, its example count, mean confidence
    and accuracy. The count-weighted gap |accuracy - confidence| summed over bins is the ECE."""
    confidence, predicted = logits.softmax(-1).max(-1)
    correct = (predicted == target).float()
    # [lo, hi) bins as torchmetrics draws them (a confidence of exactly 1 joins the last bin)
    index = (torch.bucketize(confidence, torch.linspace(0, 1, bins + 1), right=True) - 1).clamp(0, bins - 1)
    out = []
    for b in range(bins):
        mask = index == b
        n = int(mask.sum())
        out.append(
            {
                "lower": b / bins,
                "upper": (b + 1) / bins,
                "count": n,
                "confidence": confidence[mask].mean().item() if n else None,
                "accuracy": correct[mask].mean().item() if n else None,
            }
        )
    return out


def agreement(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> dict[str, float]:
    """How closely the student follows the teacher: top-1 agreement and mean KL(teacher ‖ student)."""
    kl = F.kl_div(
        F.log_softmax(student_logits, -1), F.log_softmax(teacher_logits, -1), log_target=True, reduction="batchmean"
    )
    return {
        "agreement": (student_logits.argmax(-1) == teacher_logits.argmax(-1)).float().mean().item(),
        "kl_to_teacher": kl.item(),
    }


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def flops_per_example(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Floating-point operations of one forward pass on one example (torch's flop counter)."""
    model.eval()
    device = next(model.parameters()).device
    counter = FlopCounterMode(display=False)
    with counter:
        model(torch.zeros(1, *input_shape, device=device))
    return int(counter.get_total_flops())


@dataclass
class Timing:
    """Seconds per call: the median over ``repeats`` timed blocks of ``calls`` calls each, after warm-up."""

    median_s: float
    repeats: int
    calls: int
    warmup_calls: int


def time_calls(
    fn: Callable[[], object],
    *,
    repeats: int | None = None,
    block_s: float = LATENCY_BLOCK_S,
    budget_s: float = LATENCY_BUDGET_S,
    min_repeats: int = LATENCY_MIN_REPEATS,
    max_repeats: int = 1000,
    warmup_s: float = 0.05,
    min_warmup_calls: int = 3,
    clock: Callable[[], float] = time.perf_counter,
) -> Timing:
    """Time ``fn`` robustly: warm up (caches, allocator, lazy init) for ``warmup_s``; size a block to last
    about ``block_s``; time ``repeats`` blocks (default: as many as fit in ``budget_s``, within
    [min_repeats, max_repeats]) and take the median, which ignores the blocks another process interrupted."""
    warmup = []
    start = clock()
    while len(warmup) < min_warmup_calls or clock() - start < warmup_s:
        begin = clock()
        fn()
        warmup.append(clock() - begin)
    per_call = max(statistics.median(warmup), 1e-9)  # the median: the first calls pay for lazy set-up
    calls = max(1, math.ceil(block_s / per_call))
    if repeats is None:
        repeats = min(max(round(budget_s / (calls * per_call)), min_repeats), max_repeats)
    samples = []
    for _ in range(repeats):
        begin = clock()
        for _ in range(calls):
            fn()
        samples.append((clock() - begin) / calls)
    return Timing(statistics.median(samples), repeats, calls, len(warmup))


@torch.no_grad()
def cpu_latency_ms(
    model: nn.Module,
    input_shape: tuple[int, ...],
    batch_size: int,
    threads: int | None = None,
    repeats: int | None = None,
) -> float:
    """Median milliseconds per forward pass of a batch on the CPU with ``threads`` torch threads."""
    model = model.cpu().eval()
    x = torch.randn(batch_size, *input_shape, generator=torch.Generator().manual_seed(0))
    before = torch.get_num_threads()
    torch.set_num_threads(threads or before)
    try:
        return time_calls(lambda: model(x), repeats=repeats).median_s * 1e3
    finally:
        torch.set_num_threads(before)


@torch.no_grad()
def text_latency_ms(
    model: nn.Module,
    encoder,
    texts: Sequence[str],
    batch_size: int,
    threads: int | None = None,
    repeats: int | None = None,
) -> float:
    """Median milliseconds from ``batch_size`` raw texts (the first test texts, repeated when there are
    fewer) to class probabilities on the CPU: the model's own encoder (tokenizer, vocabulary, TF-IDF),
    padding cut to the batch's longest text as a service batching requests would, the forward, a softmax."""
    model = model.cpu().eval()
    batch = [str(texts[i % len(texts)]) for i in range(batch_size)]
    pad_id = pad_id_of(model)

    def from_text() -> torch.Tensor:
        x = torch.as_tensor(encoder.transform(batch))
        return torch.softmax(model(cut_padding(x, pad_id) if pad_id is not None else x), dim=-1)

    before = torch.get_num_threads()
    torch.set_num_threads(threads or before)
    try:
        return time_calls(from_text, repeats=repeats).median_s * 1e3
    finally:
        torch.set_num_threads(before)
