"""The catalogue of bad inputs: each one ends in a single line that names the problem (and, where
there is one, the fix), exit code 2, no traceback, and nothing already written is touched.

Each case builds its inputs in a fresh folder and returns the command line; the test runs the CLI
in-process, checks the message, and checks that every file that existed before is unchanged.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest
import tests.catalogue
import torch
from tests.catalogue import recipe

from protege.cli import main
from protege.rundir import LOCK


def _all_cases() -> dict:
    """Every module's CASES under tests/catalogue, names prefixed by the module (no name is used twice)."""
    cases = {}
    for info in pkgutil.iter_modules(tests.catalogue.__path__):
        module = importlib.import_module(f"tests.catalogue.{info.name}")
        for name, case in getattr(module, "CASES", {}).items():
            cases[f"{info.name}: {name}"] = case
    return cases


CASES = _all_cases()


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file's bytes; a run's lock file is left out (each process that holds it writes its pid there)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name != LOCK}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gets_one_line_exit_2_and_loses_nothing(case, tmp_path, capsys, monkeypatch):
    make, expected, *patches = CASES[case]
    torch.manual_seed(0)
    argv = make(tmp_path)
    for patch in patches:  # a case may change the process (a package made missing) for its run only
        patch(monkeypatch)
    capsys.readouterr()
    before = _snapshot(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("protege: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert expected in err, err
    after = _snapshot(tmp_path)
    assert {k: v for k, v in after.items() if k in before} == before  # nothing already written was changed


def test_the_catalogue_has_at_least_25_cases():
    assert len(CASES) >= 25


def test_a_disk_without_room_for_the_checkpoints_is_refused_before_training(tmp_path, capsys, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000))
    assert main(recipe(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "MB are free; free some space or set output_dir on another disk" in err and err.count("\n") == 1
    assert not (tmp_path / "run" / "student").exists()


def test_disk_full_while_writing_is_one_line_and_leaves_no_half_written_model(tmp_path, capsys, monkeypatch):
    import errno

    import protege.models.store as store

    real = store.save_file

    def full(state, filename, *args, **kwargs):
        if filename.endswith("model.safetensors") and "/.model." in filename:
            raise OSError(errno.ENOSPC, "No space left on device", filename)
        return real(state, filename, *args, **kwargs)

    monkeypatch.setattr(store, "save_file", full)
    assert main(recipe(tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.startswith("protege: error: disk full writing") and "continue with --resume" in err
    stage = tmp_path / "run" / "student"
    assert not (stage / "model").exists() and not list(stage.glob(".model.*"))
    assert (stage / "checkpoints" / "latest").is_file()  # the training itself is kept for --resume
