"""protege against torchdistill: the same Hinton KD run with each, alternated, timed and measured.

    python benchmarks/vs_torchdistill.py [--rounds 3] [--epochs 8] [--examples 20000]

Task: MNIST-1D regenerated offline (``mnist1d`` source, 80/20 train/test split). A cnn1d teacher is
trained once with protege; its weights and one seeded initialisation of the student (residual MLP)
are written to files that both frameworks load. Each round then runs, each in its own subprocess
with the same thread count and in rotating order: protege with its teacher cache (the default),
protege with the teacher online, and torchdistill driven the way its users drive it (a YAML config
read by its loader, a dataset and models from its registries, ``get_distillation_box`` and the
box's epoch/forward processes). Same data, models, loss (Hinton KD), optimizer (AdamW, no weight
decay), cosine schedule per step, batch size and epochs; no augmentation; data loading in the main
process (num_workers 0) for both.

Reported per variant (median and range across rounds): wall seconds per epoch (epochs after the
first), CPU seconds of the whole training call per epoch (steadier on a shared machine), both as
speed-ups over torchdistill paired within a round; the training call's wall time; the process's peak
resident memory and its growth during training; test accuracy. One torch thread per run by default:
on a busy machine more threads wait on each other. Needs the bench extra (``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from string import Template

import torch
from safetensors.torch import load_file, save_file

os.environ.setdefault("PROTEGE_QUIET", "1")

HERE = Path(__file__).resolve().parent
RESULT_MARK = "RESULT "
VARIANTS = {
    "protege": "protege, teacher cached (default)",
    "protege-online": "protege, teacher online (cache off)",
    "torchdistill": "torchdistill, DistillationBox",
}

# torchdistill's KDLoss weighs cross-entropy by ``alpha`` and T²·KL by ``beta`` (1 - alpha); protege's
# kd objective weighs the soft term by ``alpha``; the config below maps one onto the other.
TORCHDISTILL_CONFIG = Template("""\
dependencies:
  - name: torchdistill_mnist1d

datasets:
  &train mnist1d/train: !import_call
    key: torchdistill_mnist1d.MNIST1DTensors
    init:
      kwargs:
        path: $data
        split: train

models:
  teacher_model:
    key: mnist1d_cnn
    kwargs:
      num_classes: 10
      width: $teacher_width
    src_ckpt: $teacher_ckpt
  student_model:
    key: mnist1d_mlp
    kwargs:
      num_classes: 10
      hidden: $student_hidden
    src_ckpt: $student_ckpt

train:
  num_epochs: $epochs
  train_data_loader:
    dataset_id: *train
    sampler:
      class_or_func: !import_get
        key: torch.utils.data.RandomSampler
      kwargs:
    kwargs:
      batch_size: $batch_size
      num_workers: 0
      pin_memory: false
      drop_last: false
  teacher:
    forward_proc: forward_batch_only
    requires_grad: false
  student:
    forward_proc: forward_batch_only
    requires_grad: true
  optimizer:
    key: AdamW
    kwargs:
      lr: $lr
      weight_decay: 0.0
  scheduler:
    key: CosineAnnealingLR
    kwargs:
      T_max: $total_steps
    scheduling_step: 1
  criterion:
    key: WeightedSumLoss
    kwargs:
      sub_terms:
        kd:
          criterion:
            key: KDLoss
            kwargs:
              student_module_path: '.'
              student_module_io: output
              teacher_module_path: '.'
              teacher_module_io: output
              temperature: $temperature
              alpha: $ce_weight
              reduction: batchmean
          weight: 1.0
""")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="runs of each variant, alternated")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--examples", type=int, default=20000, help="training examples (test: a quarter of that)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--temperature", type=float, default=4.0)
    parser.add_argument("--alpha", type=float, default=0.9, help="weight of the soft-target term")
    parser.add_argument("--teacher-width", type=int, default=64)
    parser.add_argument("--teacher-epochs", type=int, default=10)
    parser.add_argument("--student-hidden", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (see BENCHMARKS.md)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, help="keep the data, weights and configs here (default: temporary)")
    parser.add_argument("--worker", choices=sorted(VARIANTS), help=argparse.SUPPRESS)
    parser.add_argument("--profile", action="store_true", help="run torch.profiler over the worker's training")
    return parser.parse_args(argv)


# --- memory --------------------------------------------------------------------------------------


def _status_kib(field: str) -> int:
    """A memory figure of this process from Linux's /proc (0 elsewhere)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def reset_peak_rss() -> bool:
    """Start a new high-water mark at the current RSS (Linux ``clear_refs`` 5); False where refused."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


# --- shared inputs: data, teacher, student initialisation -----------------------------------------


def prepare(args: argparse.Namespace, workdir: Path) -> dict:
    """Write the data split, the trained teacher and the student's first weights, in the formats
    each framework loads (safetensors for protege, a torch checkpoint for torchdistill's src_ckpt)."""
    import protege
    from protege.data.build import load_data
    from protege.models.builtin import cnn1d, mlp

    data = load_data("mnist1d", {"num_samples": args.examples * 5 // 4}, val_fraction=0, seed=args.seed)
    tensors = {
        "x_train": data.train.x.contiguous(),
        "y_train": data.train.y.contiguous(),
        "x_test": data.test.x.contiguous(),
        "y_test": data.test.y.contiguous(),
    }
    save_file(tensors, workdir / "data.safetensors")

    torch.manual_seed(args.seed)
    teacher = cnn1d(data.input_shape, 10, width=args.teacher_width)
    started = time.perf_counter()
    trained = protege.train(
        teacher,
        (tensors["x_train"], tensors["y_train"]),
        seed=args.seed,
        epochs=args.teacher_epochs,
        batch_size=128,
        lr=0.01,
        weight_decay=0.0,
        mixed_precision="no",
    )
    teacher_seconds = time.perf_counter() - started
    torch.manual_seed(args.seed + 1)
    student = mlp(data.input_shape, 10, hidden=args.student_hidden, residual=True)
    for name, model in (("teacher", trained.model), ("student_init", student)):
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        save_file(state, workdir / f"{name}.safetensors")
        torch.save({"model": state}, workdir / f"{name}.pt")  # torchdistill's checkpoint layout
    return {
        "train": len(data.train),
        "test": len(data.test),
        "teacher_params": sum(p.numel() for p in teacher.parameters()),
        "student_params": sum(p.numel() for p in student.parameters()),
        "teacher_accuracy": accuracy(trained.model, tensors["x_test"], tensors["y_test"]),
        "teacher_seconds": teacher_seconds,
    }


@torch.no_grad()
def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    return (model(x).argmax(-1) == y).float().mean().item()


# --- workers: one training run each, in a fresh process --------------------------------------------


def run_protege(args: argparse.Namespace, workdir: Path, cache: str) -> dict:
    import protege
    from protege.models.builtin import cnn1d, mlp

    tensors = load_file(workdir / "data.safetensors")
    input_shape = tuple(tensors["x_train"].shape[1:])
    teacher = cnn1d(input_shape, 10, width=args.teacher_width)
    teacher.load_state_dict(load_file(workdir / "teacher.safetensors"))
    student = mlp(input_shape, 10, hidden=args.student_hidden, residual=True)
    student.load_state_dict(load_file(workdir / "student_init.safetensors"))

    def train() -> tuple[torch.nn.Module, list[float], str | None]:
        result = protege.distill(
            teacher,
            student,
            (tensors["x_train"], tensors["y_train"]),
            temperature=args.temperature,
            alpha=args.alpha,
            teacher_cache=cache,
            seed=args.seed,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            weight_decay=0.0,
            schedule="cosine",
            mixed_precision="no",
        )
        return result.model, [r["seconds"] for r in result.history], result.teacher_mode

    return measured(args, train, tensors)


def run_torchdistill(args: argparse.Namespace, workdir: Path) -> dict:
    from torchdistill.common import yaml_util
    from torchdistill.common.main_util import import_dependencies, load_ckpt, set_seed
    from torchdistill.core.distillation import get_distillation_box
    from torchdistill.models.registry import get_model

    tensors = load_file(workdir / "data.safetensors")
    steps_per_epoch = math.ceil(len(tensors["y_train"]) / args.batch_size)
    config_path = workdir / "torchdistill_kd.yaml"
    config_path.write_text(
        TORCHDISTILL_CONFIG.substitute(
            data=workdir / "data.safetensors",
            teacher_ckpt=workdir / "teacher.pt",
            student_ckpt=workdir / "student_init.pt",
            teacher_width=args.teacher_width,
            student_hidden=args.student_hidden,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            total_steps=args.epochs * steps_per_epoch,
            temperature=args.temperature,
            ce_weight=1.0 - args.alpha,
        )
    )
    set_seed(args.seed)
    config = yaml_util.load_yaml_file(str(config_path))
    import_dependencies(config.get("dependencies"))
    device = torch.device("cpu")
    models = {}
    for role, model_config in config["models"].items():
        model = get_model(model_config["key"], **model_config["kwargs"])
        load_ckpt(model_config["src_ckpt"], model=model, strict=True)
        models[role] = model.to(device)

    def train() -> tuple[torch.nn.Module, list[float], str | None]:
        box = get_distillation_box(
            teacher_model=models["teacher_model"],
            student_model=models["student_model"],
            dataset_dict=config["datasets"],
            train_config=config["train"],
            device=device,
            device_ids=None,
            distributed=False,
            lr_factor=1,
        )
        seconds = []
        for epoch in range(box.num_epochs):
            start = time.perf_counter()
            box.pre_epoch_process(epoch=epoch)
            for sample_batch, targets, supp_dict in box.train_data_loader:
                loss = box.forward_process(sample_batch.to(device), targets.to(device), supp_dict)
                box.post_forward_process(loss=loss)
            box.post_epoch_process()
            seconds.append(time.perf_counter() - start)
        box.clean_modules()
        return models["student_model"], seconds, "online"

    return measured(args, train, tensors)


def measured(args: argparse.Namespace, train, tensors: dict) -> dict:
    """Run ``train`` and report its epochs, wall and CPU time, memory and the student's test accuracy."""
    # The first optimizer a process builds imports torch._dynamo (and sympy): 90-150 MiB and 1-2
    # seconds of CPU that would land in whichever framework builds an optimizer first. Pay it up front.
    torch.optim.AdamW([torch.zeros(1, requires_grad=True)])
    peak_before = _status_kib("VmHWM")
    rss_before = _status_kib("VmRSS")
    peak_reset = reset_peak_rss()
    profiler = None
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        profiler = profile(activities=[ProfilerActivity.CPU])
        profiler.__enter__()
    started, cpu_started = time.perf_counter(), time.process_time()
    model, seconds, teacher_mode = train()
    total, cpu_total = time.perf_counter() - started, time.process_time() - cpu_started
    if profiler is not None:
        profiler.__exit__(None, None, None)
        print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=30))
    peak_training = _status_kib("VmHWM")
    return {
        "epoch_seconds": seconds,
        "train_seconds": total,
        "train_cpu_seconds": cpu_total,
        "peak_rss_mib": max(peak_before, peak_training) / 1024,
        "training_growth_mib": (peak_training - rss_before) / 1024 if peak_reset else None,
        "test_accuracy": accuracy(model, tensors["x_test"], tensors["y_test"]),
        "teacher_mode": teacher_mode,
        "threads": torch.get_num_threads(),
    }


def worker(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    if args.worker == "torchdistill":
        result = run_torchdistill(args, args.workdir)
    else:
        result = run_protege(args, args.workdir, "auto" if args.worker == "protege" else "off")
    print(RESULT_MARK + json.dumps(result), flush=True)


# --- the driver ----------------------------------------------------------------------------------


def launch(args: argparse.Namespace, variant: str, workdir: Path) -> dict:
    passed = [
        "--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--lr", str(args.lr),
        "--temperature", str(args.temperature), "--alpha", str(args.alpha),
        "--teacher-width", str(args.teacher_width), "--student-hidden", str(args.student_hidden),
        "--threads", str(args.threads), "--seed", str(args.seed),
    ]  # fmt: skip
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", variant, "--workdir", str(workdir), *passed]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{variant} run failed:\n{done.stderr[-4000:]}")
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_MARK)]
    return json.loads(lines[-1][len(RESULT_MARK) :])


def spread(values: list[float], fmt: str) -> str:
    """Median, with the range across rounds when there are several."""
    middle = format(statistics.median(values), fmt)
    if len(values) < 2:
        return middle
    return f"{middle} ({format(min(values), fmt)}–{format(max(values), fmt)})"


def epoch_wall(result: dict) -> float:
    """Median wall seconds of the epochs after the first (which also warms caches and allocators)."""
    return statistics.median(result["epoch_seconds"][1:] or result["epoch_seconds"])


def epoch_cpu(result: dict) -> float:
    """CPU seconds of the whole training call (set-up and teacher cache included) per epoch."""
    return result["train_cpu_seconds"] / len(result["epoch_seconds"])


def report(args: argparse.Namespace, setup: dict, runs: dict[str, list[dict]]) -> None:
    reference = runs["torchdistill"]
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"torch {torch.__version__}, torchdistill {metadata.version('torchdistill')}, "
        f"{args.threads} torch thread(s) per run; 1-min load average at start / end: "
        f"{setup['load_before']:.2f} / {os.getloadavg()[0]:.2f}"
    )
    print(
        f"task: MNIST-1D, {setup['train']} training / {setup['test']} test examples; teacher cnn1d width "
        f"{args.teacher_width} ({setup['teacher_params']:,} params, {setup['teacher_accuracy']:.1%} test, trained "
        f"once by protege in {setup['teacher_seconds']:.1f} s); student residual MLP {args.student_hidden} "
        f"({setup['student_params']:,} params); KD T={args.temperature}, soft-target weight {args.alpha}; AdamW "
        f"lr {args.lr}, no weight decay, cosine per step; batch {args.batch_size}; {args.epochs} epochs; "
        f"num_workers 0; {args.rounds} rounds, order rotated each round"
    )
    print()
    print(
        "| variant | wall s/epoch | speed-up (wall) | CPU s/epoch | speed-up (CPU) | training call, s | "
        "peak RSS, MiB | growth in training, MiB | test accuracy |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for variant, results in runs.items():
        # speed-ups are paired: each round's torchdistill run against the same round's run of this variant
        wall_ratio = [epoch_wall(t) / epoch_wall(r) for t, r in zip(reference, results, strict=True)]
        cpu_ratio = [epoch_cpu(t) / epoch_cpu(r) for t, r in zip(reference, results, strict=True)]
        growth = [r["training_growth_mib"] for r in results if r["training_growth_mib"] is not None]
        accuracies = ", ".join(f"{r['test_accuracy']:.1%}" for r in results)
        print(
            f"| {VARIANTS[variant]} | {spread([epoch_wall(r) for r in results], '.3f')} | "
            f"{spread(wall_ratio, '.2f')}× | {spread([epoch_cpu(r) for r in results], '.3f')} | "
            f"{spread(cpu_ratio, '.2f')}× | {spread([r['train_seconds'] for r in results], '.1f')} | "
            f"{spread([r['peak_rss_mib'] for r in results], '.0f')} | "
            f"{spread(growth, '.0f') if growth else 'n/a'} | "
            f"{statistics.median(r['test_accuracy'] for r in results):.1%} ({accuracies}) |"
        )
    print()
    print(f"protege's teacher_cache=auto chose: {runs['protege'][0]['teacher_mode']}")
    print(
        "Cells: median over rounds (range). Speed-up: torchdistill's time ÷ this variant's, per round. Wall s/epoch: "
        "median of the epochs after the first. CPU s/epoch: process CPU time of the whole training call (set-up "
        "and teacher cache included) ÷ epochs, less sensitive to other load. Peak RSS: the whole process. Growth: "
        "peak during training over the RSS just before it."
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="vs_torchdistill_") as scratch:
        workdir = args.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        setup = {"load_before": os.getloadavg()[0], **prepare(args, workdir)}
        order = list(VARIANTS)
        runs: dict[str, list[dict]] = {v: [] for v in order}
        for round_index in range(args.rounds):
            for variant in order[round_index % len(order) :] + order[: round_index % len(order)]:
                result = launch(args, variant, workdir)
                runs[variant].append(result)
                print(
                    f"round {round_index + 1}: {variant}: {epoch_wall(result):.3f} s/epoch, "
                    f"{result['test_accuracy']:.1%}",
                    file=sys.stderr,
                )
        report(args, setup, runs)


if __name__ == "__main__":
    main()
