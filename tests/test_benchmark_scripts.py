"""The benchmark scripts that have no other test run end to end at a tiny size on the CPU."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PROTEGE_QUIET": "1", "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.slow
def test_gpu_throughput_smoke_on_cpu():
    out = _run("gpu_throughput.py", "--examples", "48", "--image-size", "32", "--batch-size", "16", "--epochs", "2",
               "--teacher", "resnet18", "--student", "resnet10t", "--quick")  # fmt: skip
    rows = [line for line in out.splitlines() if line.startswith("| fp32")]
    assert len(rows) == 1
    rates = [float(cell.split(" ex/s")[0].replace(",", "")) for cell in rows[0].split("|")[4:7]]
    assert all(rate > 0 for rate in rates)


def test_overhead_benchmark_reports_both_ratios():
    out = _run("overhead.py", "--examples", "800", "--rounds", "2", "--epochs", "2", "--batch-size", "200")
    cached = next(line for line in out.splitlines() if line.startswith("| distill, teacher cached"))
    online = next(line for line in out.splitlines() if line.startswith("| distill, teacher online"))
    assert "× plain" in cached and "× (plain + forward)" in online


@pytest.mark.slow
def test_avalanche_comparison_runs_both_libraries():
    pytest.importorskip("avalanche", reason="Avalanche is the benchmark-only extra bench-continual")
    out = _run("vs_avalanche.py", "--seeds", "0", "--epochs", "1", "--streams", "split_digits")
    rows = [line for line in out.splitlines() if line.startswith(("| naive", "| replay", "| ewc", "| lwf"))]
    assert len(rows) == 4
    for row in rows:
        cells = [c.strip() for c in row.split("|")[1:-1]]
        assert 0 <= float(cells[1].split(" ±")[0]) <= 1 and 0 <= float(cells[2].split(" ±")[0]) <= 1


def test_adaptation_benchmark_tables_every_method():
    out = _run("adaptation.py", "--seeds", "0", "--epochs", "1", "--methods", "[source_only, adabn, dann]")
    rows = [line for line in out.splitlines() if line.startswith(("| source_only", "| adabn", "| dann"))]
    assert len(rows) == 3
    for row in rows:
        cells = [c.strip() for c in row.split("|")[1:-1]]
        assert 0 <= float(cells[1].split(" ±")[0]) <= 1 and 0 <= float(cells[2].split(" ±")[0]) <= 1


def test_multitask_benchmark_reports_every_row_per_task():
    out = _run(
        "multitask.py", "--seeds", "0", "1", "--samples", "200", "--teacher-epochs", "1", "--student-epochs", "1"
    )
    rows = [
        line
        for line in out.splitlines()
        if line.startswith(("| multi-task", "| single-task", "| teachers", "| student"))
    ]
    assert len(rows) == 6
    for row in rows:
        cells = [c.strip() for c in row.split("|")[2:-1]]
        assert len(cells) == 4 and all(" ± " in cell for cell in cells)
    assert "single-task MLPs" in out and "parameters" in out


def test_quantize_benchmark_tables_float_and_int8():
    out = _run("quantize.py", "--hidden", "16", "--epochs", "1")
    rows = [line for line in out.splitlines() if line.startswith("| mlp 16 |")]
    assert [row.split("|")[2].strip() for row in rows] == ["float", "int8"]
    for row in rows:
        assert 0 <= float(row.split("|")[3].strip().rstrip("%")) <= 100
    assert "float ÷ int8 latency b1" in out


@pytest.mark.slow
def test_data_loading_benchmark_reports_every_loader_and_mode():
    out = _run("data_loading.py", "--files", "200", "--memory-sizes", "200", "--side", "16", "--workers", "1")
    for row in ("| protege, streamed from files |", "| torchvision ImageFolder", "| protege, prepared cache"):
        assert float(next(line for line in out.splitlines() if line.startswith(row)).split("|")[2].replace(",", "")) > 0
    assert [line.split("|")[2].strip() for line in out.splitlines() if line.startswith("| 200 |")] == [
        "stream",
        "cache",
        "memory",
    ]


@pytest.mark.slow
def test_text_speed_runs_every_contestant_on_the_same_texts():
    pytest.importorskip("sentence_transformers")
    out = _run(
        "text_speed.py", "--texts", "24", "--train", "16", "--repeats", "1", "--max-length", "16", "--threads", "1"
    )
    rows = {line.split("|")[1].strip(): line for line in out.splitlines() if line.startswith("| ")}
    for name in ("sentence-transformers encode", "protege teacher logits, auto", "protege fine-tune epoch",
                 "HF Trainer epoch"):  # fmt: skip
        assert name in rows and rows[name].rstrip().endswith("× |"), out


@pytest.mark.slow
def test_text_distill_benchmark_prints_each_student_at_a_tiny_size():
    small = ["data.options.per_class=20", "transfer.options.num_samples=16", "teacher.train.epochs=1",
             "teacher.model.max_length=16", "student.train.epochs=1", "students.textcnn.train.epochs=1",
             "students.textcnn.model.max_length=16", "students.minilm_l2.train.epochs=1",
             "students.minilm_l2.model.max_length=16", "evaluate.latency_batch_sizes=[1,64]"]  # fmt: skip
    out = _run("text_distill.py", "--seeds", "0", "--no-ablation", "--set", *small)
    rows = [line for line in out.splitlines() if line.startswith("| ") and "×" in line]
    assert [row.split("|")[1].strip() for row in rows] == ["student", "textcnn", "minilm_l2"], out


def test_function_matching_benchmark_runs_both_arms_with_the_teacher_where_each_needs_it():
    out = _run("function_matching.py", "--seeds", "0", "--epochs", "2", "--teacher-epochs", "1")
    assert "seed 0 cached: " in out and "(teacher cached (memory))" in out
    assert "seed 0 function matching: " in out and "(teacher online)" in out
    rows = [line for line in out.splitlines() if line.startswith(("| teacher", "| cached", "| function matching"))]
    assert len(rows) == 3
