"""Continual-learning strategies by name, each a small module with its paper."""

from __future__ import annotations

from protege.continual.strategies.base import ContinualStrategy
from protege.continual.strategies.der import DER
from protege.continual.strategies.ewc import EWC, MAS
from protege.continual.strategies.icarl import ICaRL
from protege.continual.strategies.joint import Joint
from protege.continual.strategies.lwf import LwF
from protege.continual.strategies.replay import Replay
from protege.registry import Registry

CONTINUAL_STRATEGIES: Registry[type[ContinualStrategy]] = Registry("continual strategy")
for _strategy in (ContinualStrategy, Joint, Replay, EWC, MAS, LwF, ICaRL, DER):
    CONTINUAL_STRATEGIES.register(_strategy.name)(_strategy)


def build_continual_strategy(name: str, options: dict) -> ContinualStrategy:
    """The strategy ``name`` with its options checked (one line naming a bad one)."""
    checked = CONTINUAL_STRATEGIES.check_options(name, options)
    return CONTINUAL_STRATEGIES.get(name)(**checked)


__all__ = ["CONTINUAL_STRATEGIES", "ContinualStrategy", "build_continual_strategy"]
