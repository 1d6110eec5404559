"""The same recipe in two CPU processes (torchrun + gloo, through Accelerate)."""

import copy
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
import yaml

from protege.pipeline import run_recipe
from protege.recipe_reader import recipe_from_dict

RECIPE = {
    "name": "ddp",
    "seed": 0,
    "data": {"source": "digits", "standardize": True, "test_fraction": 0.4},
    "teacher": {"model": {"source": "mlp", "hidden": 128}, "train": {"epochs": 8, "batch_size": 64, "lr": 0.01}},
    "student": {
        "model": {"source": "mlp", "hidden": 32},
        "objective": {"name": "kd", "temperature": 2, "alpha": 0.5},
        "train": {"epochs": 8, "batch_size": 64, "lr": 0.01},
    },
    "evaluate": {"latency": False},
}


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("torchrun", path=os.path.dirname(sys.executable)) is None, reason="no torchrun")
def test_two_processes_share_the_work_and_only_rank_zero_writes(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(RECIPE))
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    env = dict(os.environ, PROTEGE_QUIET="0", OMP_NUM_THREADS="1")
    done = subprocess.run(
        [torchrun, "--nproc_per_node", "2", "-m", "protege.cli", "run", str(recipe), "-o", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, _failure(done.stderr)
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    # one line per epoch per stage: the second process wrote nothing
    assert [(r["stage"], r["epoch"]) for r in lines] == [(s, e) for s in ("teacher", "student") for e in range(1, 9)]
    # each process took half of the 970 training examples: 8 batches of 64 per epoch, not 16
    assert lines[0]["step"] == 8
    assert done.stdout.count("student distilled") == 1
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["models"]["teacher"]["accuracy"] > 0.85
    # one process with the same global batch (2 × 64) ends within 1 point of the two
    single = copy.deepcopy(RECIPE)
    for stage in ("teacher", "student"):
        single[stage]["train"]["batch_size"] = 128
    alone = run_recipe(recipe_from_dict(single), tmp_path / "single").report
    for stage in ("teacher", "student"):
        gap = abs(alone["models"][stage]["accuracy"] - report["models"][stage]["accuracy"])
        assert gap <= 0.01, (stage, alone["models"][stage]["accuracy"], report["models"][stage]["accuracy"])


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("torchrun", path=os.path.dirname(sys.executable)) is None, reason="no torchrun")
def test_trainable_objective_parts_and_memory_banks_stay_identical_across_processes(tmp_path):
    from safetensors.torch import load_file

    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    worker = os.path.join(os.path.dirname(__file__), "workers", "objective_state.py")
    env = dict(os.environ, PROTEGE_QUIET="1", OMP_NUM_THREADS="1")
    done = subprocess.run(
        [torchrun, "--nproc_per_node", "2", worker, str(tmp_path)], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, _failure(done.stderr)
    first, second = load_file(tmp_path / "rank0.safetensors"), load_file(tmp_path / "rank1.safetensors")
    assert any(key.startswith("objective.parts.0.adapter") for key in first)
    assert "objective.parts.1.memory_student" in first
    for key, value in first.items():
        assert torch.equal(value, second[key]), key


def _failure(stderr: str) -> str:
    """A worker's own error (where an abort names its cause) and torchrun's summary, without what is between."""
    lines = [line for line in stderr.splitlines() if not line.startswith(("W1", "I1"))]
    text = "\n".join(lines)
    return text if len(text) <= 4000 else f"{text[:2000]}\n[...]\n{text[-2000:]}"
