"""Run directories: protege reopens or replaces only folders it made, and says so in one line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.catalogue import recipe


def project_folder(tmp: Path) -> list[str]:
    """A user's folder that happens to hold a config.yaml: --overwrite must not empty it."""
    (tmp / "run").mkdir()
    (tmp / "run" / "config.yaml").write_text("project: mine\n")
    (tmp / "run" / "train.py").write_text("print('my code')\n")
    return [*recipe(tmp), "--overwrite"]


def demo_into_existing_folder(tmp: Path) -> list[str]:
    (tmp / "out").mkdir()
    (tmp / "out" / "results.csv").write_text("a,b\n1,2\n")
    return ["demo", "-o", str(tmp / "out")]


def output_that_is_a_file(tmp: Path) -> list[str]:
    argv = recipe(tmp)
    (tmp / "run").write_text("not a folder")
    return argv


def evaluate_into_the_run(tmp: Path) -> list[str]:
    from protege.cli import main

    argv = recipe(tmp)
    assert main(argv) == 0
    return ["evaluate", str(tmp / "run"), "--no-latency", "-o", str(tmp / "run" / "student")]


CASES: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "overwrite of a folder protege did not make": (project_folder, "is not a protege run directory (no .protege-run"),
    "demo into a folder that already exists": (demo_into_existing_folder, "already exists; pass --resume"),
    "resume and overwrite together": (
        lambda t: [*recipe(t), "--resume", "--overwrite"],
        "--resume continues a run and --overwrite replaces it; pass one of them",
    ),
    "run directory that is a file": (output_that_is_a_file, "is a file; choose a folder with --output"),
    "evaluation written into the run it reads": (evaluate_into_the_run, "an evaluation never changes a run"),
}
