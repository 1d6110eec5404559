"""The methods an ``adaptation:`` block names, with their options checked against the step's signature:
``source_only`` (ERM on the source alone, the reference), ``adabn`` (the source-only model with its
BatchNorm statistics re-estimated on the target), and the two-stream steps ``dann``, ``cdan``, ``mdd``."""

from __future__ import annotations

from protege.adaptation.adabn import PAPER as ADABN_PAPER
from protege.adaptation.steps import AdaptationStep, CDANStep, DANNStep, MDDStep
from protege.registry import Registry

SOURCE_ONLY, ADABN = "source_only", "adabn"


class SourceOnly:
    """Empirical risk minimisation on the labelled source alone: the recipe's objective, no target."""

    method = SOURCE_ONLY
    paper = "empirical risk minimisation on the source (the reference every method is measured against)"


class AdaBN:
    """No training of its own: the source-only model, its BatchNorm statistics re-estimated on the target."""

    method = ADABN
    paper = ADABN_PAPER


ADAPTATION_METHODS: Registry[type] = Registry("adaptation method")
for _method in (SourceOnly, AdaBN, DANNStep, CDANStep, MDDStep):
    ADAPTATION_METHODS.register(_method.method)(_method)


def build_step(name: str, options: dict) -> AdaptationStep | None:
    """The two-stream step of method ``name`` (None for source_only and adabn), options checked in one line."""
    checked = ADAPTATION_METHODS.check_options(name, options)
    entry = ADAPTATION_METHODS.get(name)
    if not issubclass(entry, AdaptationStep):
        return None
    return entry(**checked)


def paper(name: str) -> str:
    return ADAPTATION_METHODS.get(name).paper
