"""What distillation costs over plain training, per epoch, in one process.

    python benchmarks/overhead.py [--examples 80000] [--rounds 8] [--epochs 3] [--threads 1] [--clock cpu]

Times a plain student epoch, a distillation epoch with the teacher cache, one with the teacher running
online, and one pass of the teacher's forward over the data, and prints the ratios against their
floors: cached ≈ plain, online ≈ plain + teacher forward. The four are measured in turn, round after
round (the order rotating), so a machine that changes speed during the run slows all of them alike;
each round's ratio uses that round's medians, and the table gives the median ratio over the rounds
with its range, and the ratio of the fastest epochs of each variant over all rounds (the least
disturbed, as ``timeit`` advises).

On a shared 2-core machine single wall-clock epochs vary by ±30% (other tenants take the CPU), so by
default epochs are timed in CPU seconds of this process (``time.process_time`` between the ends of
consecutive epochs; one torch thread, so CPU time is the work done): time the machine spent elsewhere
does not count. ``--clock wall`` times wall seconds instead.
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

CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}


class EpochClock:
    """Reads a clock at the end of every epoch (fit's on_epoch callback): the differences are the epochs
    after the first (which pays for first-touch allocations)."""

    def __init__(self, clock) -> None:
        self.clock = clock
        self.marks: list[float] = []

    def __call__(self, record: dict) -> None:
        self.marks.append(self.clock())

    def epochs(self) -> list[float]:
        return [b - a for a, b in zip(self.marks, self.marks[1:], strict=False)]


@torch.no_grad()
def teacher_forward_seconds(teacher, dataset, batch_size: int, repeats: int, clock) -> list[float]:
    """Passes of the teacher over the data in training-size batches (the online floor's second part)."""
    teacher.eval()
    times = []
    for _ in range(repeats):
        start = clock()
        for batch in batch_loader(dataset, batch_size, shuffle=True, seed=len(times)):
            teacher(batch["x"])
        times.append(clock() - start)
    return times[1:]


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=80000)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run; the first of each is not timed")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's choice)")
    parser.add_argument("--clock", choices=list(CLOCKS), default="cpu", help="CPU seconds of this process or wall")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    clock = CLOCKS[args.clock]

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
        timer = EpochClock(clock)
        fit(student(), train, build_objective([("ce", {}, 1.0)]), config, on_epoch=[timer])
        return timer.epochs()

    def distill_run(cache: str):
        timer = EpochClock(clock)
        fit(student(), train, kd(), config, teacher=teacher, teacher_cache=cache, on_epoch=[timer])
        return timer.epochs()

    variants = {
        "plain": plain_run,
        "cached": lambda: distill_run("memory"),
        "online": lambda: distill_run("off"),
        "forward": lambda: teacher_forward_seconds(teacher, train, args.batch_size, args.epochs, clock),
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
        f"{args.epochs} epochs per variant (median of the last {args.epochs - 1}, {args.clock} seconds); "
        f"teacher cnn1d width 64 "
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
