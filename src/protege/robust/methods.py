"""The training methods a ``robust:`` block names, by name, with their options checked against the step's
signature (the attack and the input space come from the block, not from the method's options)."""

from __future__ import annotations

from protege.options import signature_fields
from protege.registry import Registry
from protege.robust.attacks import Attack
from protege.robust.space import InputSpace
from protege.robust.steps import AdversarialStep, ARDStep, PGDStep, RSLADStep, TRADESStep


class Plain:
    """No attack: the stage trains as the recipe says (its objective, a distilled student's teacher), the
    comparison every robust method is measured against."""

    method = "plain"
    needs_teacher = False


ROBUST_METHODS: Registry[type] = Registry(
    "robust method", fields=lambda entry: signature_fields(entry.__init__, skip=("attack", "space"))
)
for _method in (Plain, PGDStep, TRADESStep, ARDStep, RSLADStep):
    ROBUST_METHODS.register(_method.method)(_method)


def build_method(name: str, options: dict, attack: Attack, space: InputSpace) -> AdversarialStep | None:
    """The step of method ``name`` (None for ``plain``), its options checked in one line."""
    checked = ROBUST_METHODS.check_options(name, options)
    entry = ROBUST_METHODS.get(name)
    if entry is Plain:
        return None
    return entry(attack, space, **checked)


def needs_teacher(name: str) -> bool:
    return bool(ROBUST_METHODS.get(name).needs_teacher)
