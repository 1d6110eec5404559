"""benchmarks/robust.py end to end at one epoch per stage: every row, and the agreement with torchattacks."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_benchmark_reports_every_method_and_the_agreement():
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "robust.py"), "--seeds", "0", "--teacher-epochs", "1",
         "--student-epochs", "1"],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "PROTEGE_QUIET": "1", "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    for title in ("plain", "pgd", "trades", "alone, PGD", "ARD from the PGD teacher", "RSLAD from the PGD teacher"):
        assert any(row.startswith(f"| {title}") for row in rows), title
    try:
        import torchattacks  # noqa: F401
    except ImportError:
        assert "torchattacks is not installed" in done.stdout
    else:
        found = re.search(r"9 models: largest accuracy difference ([0-9.]+) points", done.stdout)
        assert found is not None and float(found.group(1)) <= 0.5
