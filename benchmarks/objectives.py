"""Every distillation objective on one teacher/student pair, with the same budget and several seeds.

    python benchmarks/objectives.py --seeds 0 1 2

MNIST-1D (4000 training / 1000 test examples, regenerated offline): a wide 1-D CNN teacher and a thin
1-D CNN student with the same layer layout, so feature and attention objectives can pair layers by
path. Every student run uses the same epochs, batch size, optimizer, schedule and initial weights
(per seed) as the plain student; only the objective (and, for born-again and the ensemble, the
teacher) changes. Runs that learn from a teacher (and self-distillation, whose soft and feature terms
need no label) also see a transfer set of ``--transfer`` new MNIST-1D samples (another generator seed)
that only the teacher labels, Hinton et al.'s protocol; the plain student cannot use unlabeled data, so
it is also shown with as many optimizer steps as the others get. Prints a markdown table: test accuracy
mean ± std over the seeds, and wall time per training example relative to plain training (teacher
training not counted; building the teacher cache counted).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

os.environ.setdefault("PROTEGE_QUIET", "1")

from protege.config import TrainConfig
from protege.data.build import load_data
from protege.data.dataset import concat
from protege.data.transfer import build_transfer_set
from protege.distill.ensemble import EnsembleTeacher
from protege.engine import fit
from protege.evaluate import predict_logits
from protege.models.builtin import cnn1d
from protege.objectives import build_objective

CONV = ["features.1", "features.3", "features.5"]  # the ReLU after each of the three convolutions

# name -> (objective specs, which teacher: "teacher", "plain" (born-again), "ensemble" or None)
RUNS: dict[str, tuple[list, str | None]] = {
    "plain (ce)": ([("ce", {}, 1.0)], None),
    "plain (ce), same steps as the others": ([("ce", {}, 1.0)], None),
    "kd": ([("kd", {"temperature": 4.0, "alpha": 0.9}, 1.0)], "teacher"),
    "dkd (beta 2)": ([("dkd", {"beta": 2.0}, 1.0)], "teacher"),
    "dist": ([("dist", {}, 1.0)], "teacher"),
    "rkd": ([("rkd", {}, 1.0)], "teacher"),
    "pkt": ([("pkt", {}, 1.0)], "teacher"),
    "crd": ([("crd", {"negatives": 1024}, 1.0)], "teacher"),
    "fitnet": ([("fitnet", {"student_layer": CONV[1], "teacher_layer": CONV[1]}, 1.0)], "teacher"),
    "attention (beta 50)": (
        [("attention", {"student_layers": CONV, "teacher_layers": CONV, "beta": 50.0}, 1.0)],
        "teacher",
    ),
    "self_distill (no teacher)": ([("self_distill", {"layers": CONV[:2]}, 1.0)], None),
    "born-again (kd T 2, alpha 0.5, from plain student)": ([("kd", {"temperature": 2.0, "alpha": 0.5}, 1.0)], "plain"),
    "kd, 2-teacher ensemble": ([("kd", {"temperature": 4.0, "alpha": 0.9}, 1.0)], "ensemble"),
}


def accuracy(model: torch.nn.Module, data) -> float:
    return (predict_logits(model, data.test).argmax(1) == data.test.y).float().mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--teacher-width", type=int, default=64)
    parser.add_argument("--student-width", type=int, default=12)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steady timings on a shared machine)")
    parser.add_argument("--transfer", type=int, default=8000, help="transfer-set size (0: none)")
    parser.add_argument("--only", nargs="*", help="run only these rows (names as in the table)")
    parser.add_argument("--save", help="also write the per-seed results to this JSON file")
    parser.add_argument("--merge", nargs="+", help="print one table from JSON files of runs with other seeds")
    args = parser.parse_args()
    if args.merge:
        parts = [json.loads(Path(f).read_text()) for f in args.merge]
        merged = {name: [tuple(r) for part in parts for r in part["results"].get(name, [])] for name in RUNS}
        seeds = [s for part in parts for s in part["seeds"]]
        print(parts[0]["header"].replace(f"seeds {parts[0]['seeds']}", f"seeds {seeds}"))
        print_table(merged)
        return
    torch.set_num_threads(args.threads)
    data = load_data("mnist1d", val_fraction=0.0)
    shape, classes = data.input_shape, data.num_classes
    with_transfer = data.train
    if args.transfer:
        options = {"num_samples": args.transfer, "seed": 1}
        with_transfer = concat(
            data.train, build_transfer_set("mnist1d", options, data, 0, args.transfer).for_data(data)
        )
    steps_factor = len(with_transfer) / len(data.train)
    student_config = TrainConfig(epochs=args.epochs, batch_size=128, lr=0.01, weight_decay=0.0, restore_best=False)
    teacher_config = TrainConfig(epochs=60, batch_size=100, lr=0.01, weight_decay=0.0, schedule="constant")
    runs = {k: v for k, v in RUNS.items() if not args.only or k in args.only}
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    teacher_accuracy = []
    for seed in args.seeds:
        teachers = []
        for offset in (0, 1000):
            torch.manual_seed(seed + offset)
            teacher = cnn1d(shape, classes, width=args.teacher_width)
            fit(teacher, data.train, build_objective([("ce", {}, 1.0)]), teacher_config, seed=seed + offset)
            teachers.append(teacher)
        teacher_accuracy.append(accuracy(teachers[0], data))
        trained: dict[str, torch.nn.Module] = {}
        for name, (specs, source) in runs.items():
            if source == "plain" and "plain (ce)" not in trained:
                continue
            teacher = {
                "teacher": teachers[0],
                "plain": trained.get("plain (ce)"),
                "ensemble": EnsembleTeacher(teachers, temperature=4.0),
                None: None,
            }[source]
            torch.manual_seed(seed)
            student = cnn1d(shape, classes, width=args.student_width)
            plain = name.startswith("plain")
            train_set = data.train if plain else with_transfer
            config = student_config
            if name == "plain (ce), same steps as the others":
                config = student_config.model_copy(update={"epochs": round(args.epochs * steps_factor)})
            start = time.perf_counter()
            outcome = fit(student, train_set, build_objective(specs), config, teacher=teacher, seed=seed)
            seconds = time.perf_counter() - start
            trained[name] = outcome.model
            per_example = seconds / (config.epochs * len(train_set))
            results[name].append((accuracy(outcome.model, data), per_example))
            print(f"seed {seed} {name}: {results[name][-1][0]:.1%}, {seconds:.1f} s", flush=True)

    header = (
        f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; seeds {args.seeds}; student cnn1d width {args.student_width}, "
        f"teacher cnn1d width {args.teacher_width} ({statistics.mean(teacher_accuracy):.1%} test accuracy); "
        f"{args.epochs} epochs, batch 128, AdamW lr 0.01 cosine; {len(data.train)} labelled examples, "
        f"transfer set {args.transfer}\n"
    )
    print(header)
    if args.save:
        Path(args.save).write_text(json.dumps({"header": header, "seeds": args.seeds, "results": results}))
    print_table(results)


def print_table(results: dict[str, list]) -> None:
    plain_time = statistics.mean(t for _, t in results["plain (ce)"]) if results.get("plain (ce)") else None
    print("| objective | test accuracy (mean ± std) | per seed | time per training example vs plain |")
    print("|---|---|---|---|")
    for name, rows in results.items():
        if not rows:
            continue
        accs = [a for a, _ in rows]
        spread = statistics.stdev(accs) if len(accs) > 1 else 0.0
        per_seed = ", ".join(f"{a:.1%}" for a in accs)
        ratio = f"{statistics.mean(t for _, t in rows) / plain_time:.2f}×" if plain_time else "–"
        print(f"| {name} | {statistics.mean(accs):.1%} ± {spread:.1%} | {per_seed} | {ratio} |")


if __name__ == "__main__":
    main()
