"""The defaults the README promises are the defaults the objectives use: a recipe that names only an
objective trains with the documented temperature, weights and layers."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from protege.objectives import OBJECTIVES

README = Path(__file__).resolve().parents[2] / "README.md"
OPTION = re.compile(r"`(\w+)` \(([^)]*)\)")
"""``name`` (default) in a table cell; a default in backticks is a string, else a number."""


def documented_defaults() -> dict[str, dict[str, str]]:
    """Objective name → {option: documented default} from the README's objective and task tables."""
    found: dict[str, dict[str, str]] = {}
    text = README.read_text(encoding="utf-8")
    for row in re.finditer(r"^\| `(\w+)` \| (.*?) \|", text, flags=re.MULTILINE):
        if row.group(1) in OBJECTIVES:
            found.setdefault(row.group(1), {}).update(OPTION.findall(row.group(2)))
    for name, options in re.findall(
        r"`(\w+)` \(((?:`\w+` [^,)]+(?:, )?)+)\)", text
    ):  # `sigmoid_kd` (`temperature` 2, ...)
        if name in OBJECTIVES:
            for option, value in re.findall(r"`(\w+)` ([\w.]+)", options):
                found.setdefault(name, {})[option] = value
    return found


REQUIRED = {"attention": {"student_layers": ["a"], "teacher_layers": ["b"]}, "self_distill": {"layers": ["a"]},
            "tinybert": {"student_depth": 1, "teacher_depth": 2}}  # fmt: skip
"""What the objectives that have no default for everything need to be built."""


def _default(name: str, option: str):
    """The value the objective built without ``option`` uses (its attribute, else its signature's default)."""
    objective = OBJECTIVES.get(name)(**REQUIRED.get(name, {}))
    if hasattr(objective, option):
        return getattr(objective, option)
    return inspect.signature(OBJECTIVES.get(name)).parameters[option].default


def _cases() -> list[tuple[str, str, str]]:
    cases = [
        (name, option, value) for name, options in documented_defaults().items() for option, value in options.items()
    ]
    return [case for case in cases if _documents_a_value(case[2])]


def _documents_a_value(value: str) -> bool:
    return bool(re.fullmatch(r"-?\d+(\.\d+)?|`[^`]+`", value.strip()))


def test_the_readme_documents_the_defaults_of_most_objectives():
    documented = documented_defaults()
    assert {"kd", "dkd", "dist", "rkd", "pkt", "fitnet", "attention", "crd", "self_distill", "sigmoid_kd"} <= set(
        documented
    )
    assert len(_cases()) >= 30


@pytest.mark.parametrize(("name", "option", "value"), _cases())
def test_documented_default_is_the_constructor_default(name, option, value):
    default = _default(name, option)
    value = value.strip()
    if value.startswith("`"):
        assert default == value.strip("`")
    else:
        assert default == pytest.approx(float(value)), (
            f"README says {name}.{option} defaults to {value}, code: {default}"
        )
