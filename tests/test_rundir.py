"""The run directory: a marker says protege made it, --overwrite removes only what protege wrote, a lock
keeps a second process out, and a resume removes the temporary files a killed run left."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import yaml

from protege import rundir
from protege.cli import main
from protege.errors import ConfigError
from protege.pipeline import run_recipe
from protege.recipe_reader import recipe_from_dict

TINY = {
    "name": "tiny",
    "data": {"source": "digits"},
    "student": {"model": {"source": "mlp", "hidden": 8}, "train": {"epochs": 1, "batch_size": 256}},
    "evaluate": {"latency": False, "html": False},
}


@pytest.fixture
def finished(tmp_path):
    run_dir = tmp_path / "run"
    run_recipe(recipe_from_dict(TINY), run_dir)
    return run_dir


def test_a_run_carries_the_marker_with_what_it_writes(finished):
    meta = rundir.read_marker(finished)
    assert meta["format"] == "protege-run"
    written = {p.name for p in finished.iterdir()} - {rundir.MARKER, rundir.LOCK}
    assert written <= set(meta["entries"]) and {"config.yaml", "student", "report.json"} <= written


def test_overwrite_removes_only_what_protege_wrote(finished):
    (finished / "notes.txt").write_text("mine")
    (finished / "analysis").mkdir()
    (finished / "analysis" / "plot.png").write_bytes(b"png")
    stale = finished / "student" / "model" / "stale.bin"
    stale.write_bytes(b"x")
    run_recipe(recipe_from_dict(TINY), finished, overwrite=True)
    assert (finished / "notes.txt").read_text() == "mine"
    assert (finished / "analysis" / "plot.png").read_bytes() == b"png"
    assert not stale.exists() and (finished / "student" / "model" / "model.json").is_file()


def test_overwrite_removes_a_link_never_what_it_points_at(finished, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    (finished / "student_baseline").symlink_to(outside, target_is_directory=True)
    rundir.claim(finished, ["student_baseline"])
    run_recipe(recipe_from_dict(TINY), finished, overwrite=True)
    assert (outside / "keep.txt").read_text() == "keep"
    assert not (finished / "student_baseline").exists()


def test_a_hand_edited_marker_never_reaches_outside_the_folder(finished, tmp_path):
    (tmp_path / "sibling.txt").write_text("keep")
    meta = rundir.read_marker(finished)
    (finished / rundir.MARKER).write_text(json.dumps({**meta, "entries": [*meta["entries"], "../sibling.txt", "/"]}))
    rundir.clear(finished)
    assert (tmp_path / "sibling.txt").read_text() == "keep"


def test_overwrite_of_the_current_directory(finished, monkeypatch, capsys):
    monkeypatch.chdir(finished)
    (finished / "notes.txt").write_text("mine")
    path = finished / "r.yaml"
    path.write_text(yaml.safe_dump(TINY))
    capsys.readouterr()
    assert main(["run", str(path), "-o", ".", "--overwrite"]) == 0, capsys.readouterr().err
    assert (finished / "notes.txt").read_text() == "mine" and (finished / "report.json").is_file()


def test_a_project_folder_with_a_config_yaml_is_not_a_run(tmp_path):
    (tmp_path / "config.yaml").write_text("my: project\n")
    (tmp_path / "train.py").write_text("print('mine')\n")
    with pytest.raises(ConfigError, match="not a protege run directory"):
        run_recipe(recipe_from_dict(TINY), tmp_path, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml", "train.py"]


def test_a_run_made_before_the_marker_is_adopted_on_resume(finished):
    (finished / rundir.MARKER).unlink()
    run_recipe(recipe_from_dict(TINY), finished, resume=True)
    assert rundir.is_run_directory(finished)


def test_resume_removes_temporary_files_a_killed_run_left(finished):
    (finished / "notes.tmp").write_text("a user's file, not hidden: kept")
    leftovers = [
        finished / ".report.json.k2j3.tmp",
        finished / "student" / "checkpoints" / ".best.x1.tmp",
        finished / "student" / ".model.9f.old.tmp" / "model.safetensors",
        finished / "student" / "checkpoints" / ".step-00000001-e0001-b000000.ab.tmp" / "state.json",
    ]
    for path in leftovers:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("partial")
    run_recipe(recipe_from_dict(TINY), finished, resume=True)
    assert not any(path.exists() for path in leftovers)
    assert not [p for p in finished.rglob("*") if rundir.is_temporary(p)]
    assert (finished / "notes.tmp").is_file()


def test_a_torn_metrics_line_from_a_kill_is_dropped_on_resume(finished):
    metrics = finished / "metrics.jsonl"
    whole = metrics.read_text()
    metrics.write_text(whole + '{"stage": "student", "epo')
    (finished / "student" / "model" / "model.json").unlink()  # the stage is redone from its checkpoint
    run_recipe(recipe_from_dict(TINY), finished, resume=True)
    assert metrics.read_text() == whole


HOLD_LOCK = """
import sys, time
from protege import rundir
with rundir.locked(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(120)
"""


def test_a_second_process_is_refused_while_the_first_holds_the_run(finished, capsys):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(finished)], stdout=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        path = finished / "r.yaml"
        path.write_text(yaml.safe_dump(TINY))
        before = (finished / "metrics.jsonl").read_text()
        capsys.readouterr()
        assert main(["run", str(path), "-o", str(finished), "--resume"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"in use by another protege process (pid {holder.pid}" in err, err
        assert main(["run", str(path), "-o", str(finished), "--overwrite"]) == 2
        assert (finished / "metrics.jsonl").read_text() == before
    finally:
        holder.kill()
        holder.wait()
    # the kernel dropped the lock with the process: nothing stale is left to clean by hand
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with rundir.locked(finished):
                break
        except rundir.RunDirectoryInUse:
            time.sleep(0.05)
    else:
        pytest.fail("the lock outlived its process")
    run_recipe(recipe_from_dict(TINY), finished, resume=True)


def test_a_run_refused_before_its_first_stage_can_be_run_again_without_overwrite(tmp_path, capsys):
    bad = dict(TINY, data={"source": f"csv:{tmp_path / 'missing.csv'}"})
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(bad))
    assert main(["run", str(path), "-o", str(tmp_path / "run")]) == 2
    path.write_text(yaml.safe_dump(TINY))
    capsys.readouterr()
    assert main(["run", str(path), "-o", str(tmp_path / "run")]) == 0, capsys.readouterr().err
    assert (tmp_path / "run" / "report.json").is_file()


def test_a_config_written_before_a_field_existed_still_resumes(finished):
    config = finished / "config.yaml"
    text = config.read_text()
    assert "task: classification" in text
    config.write_text(text.replace("  task: classification\n", ""))  # as an older protege wrote it
    run_recipe(recipe_from_dict(TINY), finished, resume=True)
    other = dict(TINY, seed=3)
    with pytest.raises(ConfigError, match="made by a different recipe"):
        run_recipe(recipe_from_dict(other), finished, resume=True)
