"""Transfer-learning strategies by name: which parameters train, at which learning rate, in which epoch."""

from __future__ import annotations

from protege.errors import ConfigError
from protege.options import Fields, signature_fields
from protege.registry import Registry
from protege.transfer.base import Strategy
from protege.transfer.discriminative_lr import DiscriminativeLR
from protege.transfer.finetune import Finetune
from protege.transfer.gradual_unfreeze import GradualUnfreeze
from protege.transfer.l2sp import L2SP
from protege.transfer.linear_probe import LinearProbe
from protege.transfer.lora import LoRA
from protege.transfer.trained_part import load_trained_part, save_trained_part

__all__ = [
    "STRATEGIES",
    "Strategy",
    "build_strategy",
    "check_strategy_options",
    "load_trained_part",
    "save_trained_part",
    "strategy_options",
]

STRATEGIES: Registry[type[Strategy]] = Registry("strategy", fields=lambda cls: strategy_options(cls))
for _cls in (LinearProbe, Finetune, GradualUnfreeze, DiscriminativeLR, L2SP, LoRA):
    STRATEGIES.register(_cls.name)(_cls)


def strategy_options(cls: type[Strategy]) -> Fields:
    """Every option of a strategy (its own and the common ones) as (annotation, default), from the constructors."""
    options: Fields = {}
    for klass in reversed([k for k in cls.__mro__ if issubclass(k, Strategy)]):
        options.update(signature_fields(klass.__init__))
    return options


def check_strategy_options(name: str, options: dict) -> dict:
    """Fail early on an unknown strategy, an unknown option (with a suggestion), a wrong type or a value out
    of range; return the options as validated."""
    return STRATEGIES.check_options(name, options)


def build_strategy(name: str, options: dict) -> Strategy:
    """A strategy from its recipe name and options."""
    options = check_strategy_options(name, options)
    try:
        return STRATEGIES.get(name)(**options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"strategy {name!r}: {exc}") from None
