"""``protege --help`` and every command's ``--help`` answer without importing torch or transformers."""

import subprocess
import sys

import pytest

COMMANDS = ["", "run", "demo", "train", "distill", "export", "predict", "rank", "evaluate"]

CHECK = """
import sys
from protege.cli import main
try:
    main([*sys.argv[1:], "--help"])
except SystemExit:
    pass
heavy = sorted(name for name in ("torch", "transformers", "accelerate", "sklearn", "timm") if name in sys.modules)
print("heavy:" + ",".join(heavy))
"""


@pytest.mark.parametrize("command", COMMANDS)
def test_help_imports_no_heavy_library(command):
    argv = [sys.executable, "-c", CHECK, *([command] if command else [])]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    assert "usage: protege" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "heavy:", done.stdout.splitlines()[-1]
