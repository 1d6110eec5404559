"""The defaults the README's strategy table promises are the ones a strategy built from its name alone uses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from protege.transfer import STRATEGIES, build_strategy

README = Path(__file__).resolve().parents[2] / "README.md"


def documented_defaults() -> dict[str, dict[str, str]]:
    """Strategy name → {option: documented default} from the rows of the README's strategy table."""
    found: dict[str, dict[str, str]] = {}
    for row in re.finditer(r"^\| `(\w+)` \| (.*?) \|", README.read_text(encoding="utf-8"), flags=re.MULTILINE):
        if row.group(1) in STRATEGIES:
            found[row.group(1)] = dict(re.findall(r"`(\w+)` \(([^)]*)\)", row.group(2)))
    return found


def _value(text: str):
    return {"true": True, "false": False}[text] if text in ("true", "false") else float(text)


def test_every_strategy_has_a_row_with_its_options():
    assert set(documented_defaults()) == set(STRATEGIES)


@pytest.mark.parametrize(
    ("name", "option", "value"),
    [(name, option, value) for name, options in documented_defaults().items() for option, value in options.items()],
)
def test_a_documented_default_is_the_built_strategys(name, option, value):
    assert getattr(build_strategy(name, {}), option) == _value(value)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_common_options_default_to_frozen_batchnorm_statistics_and_no_checkpointing(name):
    strategy = build_strategy(name, {})
    assert (strategy.head, strategy.blocks, strategy.batchnorm, strategy.gradient_checkpointing) == (
        None,
        None,
        "frozen_stats",
        False,
    )
