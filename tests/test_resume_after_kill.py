"""A real `protege run`, killed with SIGKILL in the middle of training, resumed with --resume."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml
from tests.conftest import write_sentiment_csv, write_tiny_hf_model

from protege.models.store import is_temporary

RECIPE = {
    "name": "killed",
    "seed": 3,
    "data": {"source": "digits"},
    "teacher": {"model": {"source": "mlp", "hidden": 32}, "train": {"epochs": 3, "batch_size": 64}},
    "student": {
        "model": {"source": "mlp", "hidden": 8},
        "objective": {"name": "kd", "temperature": 3},
        "train": {"epochs": 12, "batch_size": 32, "checkpoint_every": 5, "lr": 0.003},
    },
    "evaluate": {"latency": False},
}


def _run(recipe_path, out, *extra):
    env = dict(os.environ, PROTEGE_QUIET="1")
    return subprocess.Popen(
        [sys.executable, "-m", "protege.cli", "run", str(recipe_path), "-o", str(out), *extra],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _metrics(run_dir):
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "seconds"} for r in lines]


def _views_recipe(tmp_path) -> dict:
    """A tiny hf teacher (its own tokenizer) distilled into a TF-IDF mlp student: two views of one CSV."""
    texts = write_sentiment_csv(tmp_path / "sentiment.csv", n=300)
    teacher = write_tiny_hf_model(tmp_path / "tiny-bert", hidden=8, layers=1)
    return {
        **RECIPE,
        "data": {"source": f"csv:{texts}", "options": {"text_column": "text"}},
        "teacher": {"model": {"source": f"hf:{teacher}", "max_length": 12}, "train": {"epochs": 1, "batch_size": 64}},
        "student": {
            **RECIPE["student"],
            "model": {"source": "mlp", "hidden": 8},
            "train": {**RECIPE["student"]["train"], "epochs": 6},
        },
    }


@pytest.mark.slow
@pytest.mark.parametrize("views", [False, True], ids=["one view", "tokenizer teacher, TF-IDF student"])
def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(tmp_path, views):
    _kill_resume_and_compare(tmp_path, _views_recipe(tmp_path) if views else RECIPE)


@pytest.mark.slow
def test_streamed_images_resume_after_sigkill_like_an_uninterrupted_run(tmp_path):
    """Batches decoded by DataLoader workers come in the sampler's (seed, epoch) order, so a resumed
    stage skips exactly the batches done and ends with the same metrics."""
    _write_images(tmp_path / "images", 240)
    options = {"load": "stream", "num_workers": 1}
    recipe = {**RECIPE, "data": {"source": f"imagefolder:{tmp_path / 'images'}", "options": options}}
    _kill_resume_and_compare(tmp_path, recipe)


@pytest.mark.slow
def test_a_prepared_cache_run_resumes_after_sigkill_like_an_uninterrupted_run(tmp_path):
    """Images read from the prepared uint8 memory map (built once, reused by the resumed run because the
    folder did not change) in the sampler's order: the resumed stage ends with the uninterrupted metrics."""
    _write_images(tmp_path / "images", 240)
    options = {"load": "cache", "cache_dir": str(tmp_path / "image-cache")}
    recipe = {**RECIPE, "data": {"source": f"imagefolder:{tmp_path / 'images'}", "options": options}}
    _kill_resume_and_compare(tmp_path, recipe)


@pytest.mark.slow
def test_an_augmented_run_resumes_after_sigkill_like_an_uninterrupted_run(tmp_path):
    """Crops, flips and mixup drawn in a DataLoader worker from (seed, epoch, example), the teacher online on
    the augmented batch: a resumed stage draws what the uninterrupted one drew and ends with its metrics."""
    _write_images(tmp_path / "images", 240)
    options = {"load": "stream", "num_workers": 1}
    augment = ["random_resized_crop", "horizontal_flip", {"name": "mixup", "alpha": 0.4, "cutmix_alpha": 1.0}]
    student = {**RECIPE["student"], "train": {**RECIPE["student"]["train"], "augment": augment}}
    recipe = {**RECIPE, "data": {"source": f"imagefolder:{tmp_path / 'images'}", "options": options},
              "student": student}  # fmt: skip
    _kill_resume_and_compare(tmp_path, recipe)


def _write_images(folder, count: int) -> None:
    """``count`` 8×8 RGB PNGs in three class folders, each class brighter in its own channel."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(count):
        (folder / f"c{i % 3}").mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 100, (8, 8, 3), dtype=np.uint8)
        pixels[..., i % 3] += 120
        Image.fromarray(pixels).save(folder / f"c{i % 3}" / f"{i}.png")


def _kill_resume_and_compare(tmp_path, recipe):
    recipe_path = tmp_path / "r.yaml"
    recipe_path.write_text(yaml.safe_dump(recipe))

    whole = _run(recipe_path, tmp_path / "whole")
    assert whole.wait(timeout=300) == 0, whole.stderr.read()

    victim = _run(recipe_path, tmp_path / "killed")
    latest = tmp_path / "killed" / "student" / "checkpoints" / "latest"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and victim.poll() is None:
        if latest.is_file() and latest.read_text().split("-b")[-1] != "000000":  # mid-epoch checkpoint
            break
        time.sleep(0.005)
    assert victim.poll() is None, "the run ended before it could be killed"
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    assert not (tmp_path / "killed" / "report.json").exists()

    resumed = _run(recipe_path, tmp_path / "killed", "--resume")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()

    assert _metrics(tmp_path / "killed") == _metrics(tmp_path / "whole")
    assert not [p for p in (tmp_path / "killed").rglob("*") if is_temporary(p)]  # the kill's leftovers are gone
    a = json.loads((tmp_path / "whole" / "report.json").read_text())["models"]
    b = json.loads((tmp_path / "killed" / "report.json").read_text())["models"]
    for name in ("teacher", "student"):
        assert b[name]["accuracy"] == a[name]["accuracy"] and b[name]["nll"] == a[name]["nll"]
