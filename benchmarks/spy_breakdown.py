"""Where a distillation run spends its time: py-spy raw samples of vs_torchdistill workers, by step part.

    py-spy record --native -r 200 --format raw -o protege.txt -- \\
        python benchmarks/vs_torchdistill.py --worker protege --workdir DIR --epochs 4
    python benchmarks/spy_breakdown.py protege.txt protege-online.txt torchdistill.txt

Only samples inside the measured training call count. Each sample goes to the outermost frame that
names a part of the step (teacher forward, student forward, loss, backward, optimizer, data, ...), so
the teacher's own layers count as the teacher's even though they share code with the student.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

TRAINING_CALL = re.compile(r"^run_\w+\.<locals>\.train \(vs_torchdistill\.py")
# (part, pattern on one frame "function (file:line)"), matched from the root of the stack down
PARTS: list[tuple[str, re.Pattern]] = [
    ("teacher cache build (once)", re.compile(r"^prepare_teacher \(protege/distill/teacher\.py")),
    ("teacher forward", re.compile(r"^(DistillationBox\.get_teacher_output|OnlineTeacher\.(logits|_grouped)) ")),
    ("teacher cache lookup", re.compile(r"^CachedTeacher\.logits \(protege")),
    ("data loading", re.compile(r"^(_BaseDataLoaderIter\.__next__|DataLoaderShard\.__iter__|.* \(torch/utils/data)")),
    ("backward", re.compile(r"^(Tensor\.backward|Accelerator\.backward) ")),
    # an LR scheduler wraps optimizer.step, so the step shows up as lr_scheduler's wrapper
    ("optimizer step + zero_grad", re.compile(r"^(.*wrap_step\.<locals>\.wrapper|.*Optimizer\.step|.*zero_grad) ")),
    ("lr schedule", re.compile(r"^LRScheduler\.step ")),
    ("loss (KD objective)", re.compile(r"^(.*forward \(torchdistill/losses|.*forward \(protege/objectives)")),
    ("student forward", re.compile(r"^(.*forward \(protege/models/builtin|forward_batch_only \(torchdistill)")),
    (
        "setup (optimizer, Accelerate, box)",
        re.compile(
            r"^(build_optimizer|make_accelerator|Accelerator\.prepare|get_distillation_box|DistillationBox\.__init__)"
        ),
    ),
    (
        "epoch bookkeeping",
        re.compile(r"^(_accumulate|RunningSums\.add|_epoch_record|.*pre_epoch_process|.*post_epoch_process) "),
    ),
]


REST = "framework loop (the rest)"


def breakdown(path: Path) -> tuple[Counter, int]:
    """Samples per part of the step, and the total inside the training call."""
    parts: Counter = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = stack.split(";")
        starts = [i for i, frame in enumerate(frames) if TRAINING_CALL.match(frame)]
        if not starts:
            continue
        total += int(count)
        part = next(
            (name for frame in frames[starts[0] + 1 :] for name, pattern in PARTS if pattern.match(frame)),
            REST,
        )
        parts[part] += int(count)
    return parts, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profiles", type=Path, nargs="+", help="py-spy --format raw outputs, one per run")
    args = parser.parse_args()
    results = {path.stem: breakdown(path) for path in args.profiles}
    names = [*dict.fromkeys(name for name, _ in PARTS), REST]
    print("| part of the training call | " + " | ".join(results) + " |")
    print("|---|" + "---|" * len(results))
    for name in names:
        cells = [f"{100 * parts[name] / max(total, 1):.1f}%" for parts, total in results.values()]
        if any(parts[name] for parts, _ in results.values()):
            print(f"| {name} | " + " | ".join(cells) + " |")
    print("| samples | " + " | ".join(str(total) for _, total in results.values()) + " |")


if __name__ == "__main__":
    main()
