"""Approximate unlearning methods by name, each a small module with its paper."""

from __future__ import annotations

from protege.registry import Registry
from protege.unlearning.methods.bad_teacher import BadTeacher
from protege.unlearning.methods.base import UnlearningMethod
from protege.unlearning.methods.finetune import Finetune
from protege.unlearning.methods.neggrad import NegGrad
from protege.unlearning.methods.random_label import RandomLabel
from protege.unlearning.methods.scrub import Scrub

METHODS: Registry[type[UnlearningMethod]] = Registry("unlearning method")
for _method in (Finetune, NegGrad, RandomLabel, Scrub, BadTeacher):
    METHODS.register(_method.name)(_method)


def build_method(name: str, options: dict) -> UnlearningMethod:
    """The method ``name`` with its options checked (one line naming a bad one)."""
    return METHODS.get(name)(**METHODS.check_options(name, options))


__all__ = ["METHODS", "UnlearningMethod", "build_method"]
