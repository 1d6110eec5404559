"""Transfer-learning strategies by name: which parameters train, at which learning rate, in which epoch."""

from __future__ import annotations

import inspect
import typing

from pydantic import ConfigDict, ValidationError, create_model

from protege.errors import ConfigError, did_you_mean
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

STRATEGIES: Registry[type[Strategy]] = Registry("strategy")
for _cls in (LinearProbe, Finetune, GradualUnfreeze, DiscriminativeLR, L2SP, LoRA):
    STRATEGIES.register(_cls.name)(_cls)


def strategy_options(cls: type[Strategy]) -> dict[str, tuple[typing.Any, typing.Any]]:
    """Every option of a strategy (its own and the common ones), as (type, default), from the constructors."""
    options: dict[str, tuple[typing.Any, typing.Any]] = {}
    for klass in reversed([k for k in cls.__mro__ if issubclass(k, Strategy)]):
        hints = typing.get_type_hints(klass.__init__)
        for name, param in inspect.signature(klass.__init__).parameters.items():
            if name != "self" and param.kind not in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
                options[name] = (hints.get(name, typing.Any), param.default)
    return options


def check_strategy_options(name: str, options: dict) -> None:
    """Fail early on an unknown strategy, an unknown option (with a suggestion) or a wrong type."""
    cls = STRATEGIES.get(name)
    fields = strategy_options(cls)
    for option in options:
        if option not in fields:
            raise ConfigError(
                f"strategy {name!r} has no option {option!r}{did_you_mean(option, fields)}; valid: {', '.join(fields)}"
            )
    model = create_model(f"{cls.__name__}Options", __config__=ConfigDict(strict=False), **fields)
    try:
        model.model_validate(options)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise ConfigError(f"strategy {name!r}: {'.'.join(map(str, error['loc']))}: {error['msg']}") from None


def build_strategy(name: str, options: dict) -> Strategy:
    """A strategy from its recipe name and options."""
    check_strategy_options(name, options)
    try:
        return STRATEGIES.get(name)(**options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"strategy {name!r}: {exc}") from None
