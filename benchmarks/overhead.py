"""What distillation costs over plain training, per epoch, in one process.

    python benchmarks/overhead.py [--examples 20000] [--epochs 6]

Times (median over epochs after the first) a plain student epoch, a distillation epoch with the
teacher cache, one with the teacher running online, and one pass of the teacher's forward over the
data, and prints the ratios against their floors: cached ≈ plain, online ≈ plain + teacher forward.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import time

import torch

os.environ.setdefault("PROTEGE_QUIET", "1")

from protege.config import TrainConfig
from protege.data.build import load_data
from protege.data.dataset import batch_loader
from protege.engine import fit
from protege.models.builtin import cnn1d, mlp
from protege.objectives import build_objective


def median_epoch_seconds(history: list[dict]) -> float:
    return statistics.median(r["seconds"] for r in history[1:])


@torch.no_grad()
def teacher_forward_seconds(teacher, dataset, batch_size: int, repeats: int) -> float:
    teacher.eval()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for batch in batch_loader(dataset, batch_size):
            teacher(batch["x"])
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()

    data = load_data("mnist1d", {"num_samples": args.examples * 5 // 4}, val_fraction=0)
    train = data.train
    torch.manual_seed(0)
    teacher = cnn1d(data.input_shape, 10, width=64)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=0.003)

    def student():
        torch.manual_seed(0)
        return mlp(data.input_shape, 10, hidden=256, residual=True)

    kd = lambda: build_objective([("kd", {"temperature": 2.0, "alpha": 0.5}, 1.0)])  # noqa: E731
    plain = fit(student(), train, build_objective([("ce", {}, 1.0)]), config)
    cached = fit(student(), train, kd(), config, teacher=teacher, teacher_cache="memory")
    online = fit(student(), train, kd(), config, teacher=teacher, teacher_cache="off")
    forward = teacher_forward_seconds(teacher, train, args.batch_size, repeats=4)

    t_plain, t_cached, t_online = map(median_epoch_seconds, (plain.history, cached.history, online.history))
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    print(
        f"task: MNIST-1D, {len(train)} training examples, batch {args.batch_size}, {args.epochs} epochs "
        f"(median of the last {args.epochs - 1}); teacher cnn1d width 64 "
        f"({sum(p.numel() for p in teacher.parameters()):,} params), student mlp 256 residual"
    )
    print("| epoch | seconds | ratio | floor | target |")
    print("|---|---|---|---|---|")
    print(f"| plain student | {t_plain:.3f} | 1.00 | – | – |")
    print(f"| teacher forward pass alone | {forward:.3f} | – | – | – |")
    print(f"| distill, teacher cached | {t_cached:.3f} | {t_cached / t_plain:.2f} × plain | plain | ≤ 1.10 |")
    print(
        f"| distill, teacher online | {t_online:.3f} | {t_online / (t_plain + forward):.2f} × (plain + forward) "
        f"| plain + forward | ≤ 1.10 |"
    )
    with contextlib.suppress(Exception):
        print(f"cache built in: {cached.teacher_mode}")


if __name__ == "__main__":
    main()
