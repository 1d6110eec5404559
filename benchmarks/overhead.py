"""What distillation costs over plain training, per epoch, in one process.

    python benchmarks/overhead.py [--examples 20000] [--rounds 5] [--epochs 3] [--threads N]

Times a plain student epoch, a distillation epoch with the teacher cache, one with the teacher running
online, and one pass of the teacher's forward over the data, and prints the ratios against their
floors: cached ≈ plain, online ≈ plain + teacher forward. The four are measured in turn, round after
round (the order rotating), so a machine that changes speed during the run slows all of them alike;
each round's ratio uses that round's medians, and the table gives the median ratio over the rounds
with its range. On a shared machine single epochs vary by ±30%, so the table also gives the ratio of
the fastest epochs of each variant over all rounds: the least disturbed, as ``timeit`` advises.
"""

from __future__ import annotations

import argparse
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


def epoch_seconds(history: list[dict]) -> list[float]:
    """The epochs after the first (which pays for first-touch allocations)."""
    return [r["seconds"] for r in history[1:]]


@torch.no_grad()
def teacher_forward_seconds(teacher, dataset, batch_size: int, repeats: int) -> list[float]:
    """Passes of the teacher over the data in training-size batches (the online floor's second part)."""
    teacher.eval()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for batch in batch_loader(dataset, batch_size, shuffle=True, seed=len(times)):
            teacher(batch["x"])
        times.append(time.perf_counter() - start)
    return times[1:]


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run; the first of each is not timed")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    data = load_data("mnist1d", {"num_samples": args.examples * 5 // 4}, val_fraction=0)
    train = data.train
    torch.manual_seed(0)
    teacher = cnn1d(data.input_shape, 10, width=64)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=0.003)

    def student():
        torch.manual_seed(0)
        return mlp(data.input_shape, 10, hidden=256, residual=True)

    def kd():
        return build_objective([("kd", {"temperature": 2.0, "alpha": 0.5}, 1.0)])

    def plain_run():
        return epoch_seconds(fit(student(), train, build_objective([("ce", {}, 1.0)]), config).history)

    def distill_run(cache: str):
        return epoch_seconds(fit(student(), train, kd(), config, teacher=teacher, teacher_cache=cache).history)

    variants = {
        "plain": plain_run,
        "cached": lambda: distill_run("memory"),
        "online": lambda: distill_run("off"),
        "forward": lambda: teacher_forward_seconds(teacher, train, args.batch_size, repeats=args.epochs),
    }
    names = list(variants)
    epochs: dict[str, list[float]] = {name: [] for name in names}
    rounds: list[dict[str, float]] = []
    for r in range(args.rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        times = {name: variants[name]() for name in order}
        for name in names:
            epochs[name] += times[name]
        rounds.append({name: statistics.median(times[name]) for name in names})
        print(f"round {r + 1}: " + ", ".join(f"{n} {rounds[-1][n]:.3f}s" for n in names), flush=True)

    seconds = {n: statistics.median(epochs[n]) for n in names}
    fastest = {n: min(epochs[n]) for n in names}
    cached_ratio = [r["cached"] / r["plain"] for r in rounds]
    online_ratio = [r["online"] / (r["plain"] + r["forward"]) for r in rounds]
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    print(
        f"task: MNIST-1D, {len(train)} training examples, batch {args.batch_size}; {args.rounds} rounds of "
        f"{args.epochs} epochs per variant (median of the last {args.epochs - 1}); teacher cnn1d width 64 "
        f"({sum(p.numel() for p in teacher.parameters()):,} params), student mlp 256 residual"
    )
    print("| epoch | median s | fastest s | ratio: median over rounds (range) | ratio of fastest | target |")
    print("|---|---|---|---|---|---|")
    print(f"| plain student | {seconds['plain']:.3f} | {fastest['plain']:.3f} | – | – | – |")
    print(f"| teacher forward pass alone | {seconds['forward']:.3f} | {fastest['forward']:.3f} | – | – | – |")
    print(
        f"| distill, teacher cached | {seconds['cached']:.3f} | {fastest['cached']:.3f} | {spread(cached_ratio)} "
        f"× plain | {fastest['cached'] / fastest['plain']:.2f} × plain | ≤ 1.10 |"
    )
    online_floor = fastest["plain"] + fastest["forward"]
    print(
        f"| distill, teacher online | {seconds['online']:.3f} | {fastest['online']:.3f} | {spread(online_ratio)} "
        f"× (plain + forward) | {fastest['online'] / online_floor:.2f} × (plain + forward) | ≤ 1.10 |"
    )


if __name__ == "__main__":
    main()
