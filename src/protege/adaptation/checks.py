"""The checks of an ``adaptation:`` block that need more than its field types: the methods' names and
options, the target's data source, and a student objective the two-stream steps would replace. Each
failure is one line naming the field (through protege.checks)."""

from __future__ import annotations

from typing import Protocol

from protege.config import Recipe


class Checks(Protocol):
    def fail(self, where: str, problem: str | Exception) -> None: ...

    def guard(self, where: str, check, *args) -> None: ...


def check_adaptation(checks: Checks, recipe: Recipe) -> None:
    """Raise (through ``checks``) on the first problem of ``recipe``'s adaptation block."""
    from protege.adaptation.methods import ADAPTATION_METHODS
    from protege.data import SOURCES

    config = recipe.adaptation
    assert config is not None and recipe.student is not None
    for i, method in enumerate(config.methods):
        checks.guard(f"adaptation.methods[{i}].name", ADAPTATION_METHODS.get, method.name)
        checks.guard(f"adaptation.methods[{i}]", ADAPTATION_METHODS.check_options, method.name, method.options)
    if config.target.source is not None:
        checks.guard("adaptation.target.source", SOURCES.get, config.target.source.partition(":")[0])
    objectives = recipe.student.objectives
    plain_ce = len(objectives) == 1 and objectives[0].name == "ce" and not objectives[0].options
    if not plain_ce or objectives[0].weight != 1:
        named = ", ".join(o.name for o in objectives) or "none"
        checks.fail("student.objective", f"the adaptation methods train with the source's cross-entropy plus their "
                    f"own term, so the objective ({named}) would not be used: remove it")  # fmt: skip
    if config.select == "target_val" and config.target.shift is not None and recipe.data.val_fraction == 0:
        checks.fail("adaptation.select", "target_val selects on the shifted validation split, and data.val_fraction "
                    "is 0: set it above 0, or select: source")  # fmt: skip
