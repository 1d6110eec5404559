"""What a model kept and what it costs: accuracy, NLL, agreement with the teacher, size, FLOPs, latency."""

from __future__ import annotations

import logging

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from protege.data.dataset import ArrayDataset, batch_loader


@torch.no_grad()
def predict_logits(model: nn.Module, dataset: ArrayDataset, batch_size: int = 512) -> torch.Tensor:
    """Logits for every example of ``dataset``, in order, on the CPU, in eval mode."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = [model(batch["x"].to(device)).float().cpu() for batch in batch_loader(dataset, batch_size)]
    model.train(was_training)
    return torch.cat(out)


def quality(logits: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """Top-1 accuracy and mean negative log-likelihood."""
    return {
        "accuracy": (logits.argmax(-1) == target).float().mean().item(),
        "nll": F.cross_entropy(logits, target).item(),
    }


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


@torch.no_grad()
def cpu_latency_ms(
    model: nn.Module, input_shape: tuple[int, ...], batch_size: int, threads: int | None = None, min_time: float = 0.3
) -> float:
    """Median milliseconds per forward pass of a batch on the CPU, after warm-up (torch.utils.benchmark)."""
    # torch.utils.benchmark imports cpp_extension, which warns about CUDA_HOME on CPU-only machines
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    from torch.utils import benchmark

    model = model.cpu().eval()
    threads = threads or torch.get_num_threads()
    x = torch.randn(batch_size, *input_shape)
    for _ in range(3):
        model(x)
    timer = benchmark.Timer(stmt="model(x)", globals={"model": model, "x": x}, num_threads=threads)
    return timer.blocked_autorange(min_run_time=min_time).median * 1e3
