"""Options checked against the signature that takes them: names, types and ranges.

A range is declared once, where the option is defined (``temperature: Annotated[float, Field(gt=0)]``),
and the same pydantic check serves recipes, ``--dry-run`` and the Python API, for objectives,
strategies, builtin and ``hf:`` models, data sources and derived transfer sets. The sizes below bound
what an option, a data set or a saved model card may ask for.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Iterable
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, ValidationError, create_model

from protege.errors import ConfigError, ProtegeError, did_you_mean

Share = Annotated[float, Field(ge=0, le=1)]
"""A weight or fraction in [0, 1]."""
DropRate = Annotated[float, Field(ge=0, lt=1)]
"""A probability that must leave something: dropout, label smoothing, momentum in [0, 1)."""
Scale = Annotated[float, Field(gt=0, le=1)]
"""A multiplier that may shrink but not zero or grow a learning rate: (0, 1]."""

MAX_WIDTH = 65536
Width = Annotated[int, Field(ge=1, le=MAX_WIDTH)]
"""A layer width, channel count or embedding size: at least 1, at most 65,536."""

MAX_DEPTH = 256
Depth = Annotated[int, Field(ge=1, le=MAX_DEPTH)]
"""A number of layers: at least 1, at most 256."""

MAX_SIDE = 8192
"""The longest side of an image, in pixels: a resize target, a saved model's image size."""
ImageMode = Literal["L", "RGB", "RGBA"]

MAX_INPUT_VALUES = 3 * 1024 * 1024
"""The most values one input may hold (a 1024×1024 RGB image): a data set's inputs and a saved model's card."""

Fields = dict[str, tuple[Any, Any]]


def signature_fields(function: Callable, skip: Iterable[str] = ()) -> Fields:
    """The keyword options of ``function`` (a class's ``__init__`` or a builder) as (annotation, default),
    the annotations with their ``Annotated`` ranges; required parameters get pydantic's ``...``."""
    hints = typing.get_type_hints(function, include_extras=True)
    fields: Fields = {}
    for name, param in inspect.signature(function).parameters.items():
        if name == "self" or name in skip or param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
            continue
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[name] = (hints.get(name, Any), default)
    return fields


def check_options(
    what: str,
    fields: Fields,
    options: dict,
    error: type[ProtegeError] = ConfigError,
    also_valid: Iterable[str] = (),
) -> dict:
    """Refuse an unknown option (with a suggestion), a wrong type or a value out of range in one line
    that starts with ``what`` (``objective 'kd'``); return the options as validated (``"4"`` becomes 4.0)."""
    for option in options:
        if option not in fields:
            hint = did_you_mean(str(option), [*fields, *also_valid])
            raise error(f"{what} has no option {option!r}{hint}; valid: {', '.join(fields) or 'none'}")
    # floats must be finite: no option means anything at infinity or NaN
    config = ConfigDict(strict=False, allow_inf_nan=False, arbitrary_types_allowed=True)
    model = create_model("Options", __config__=config, **fields)
    try:
        validated = model.model_validate(options)
    except ValidationError as exc:
        raise error(f"{what}: {describe(exc)}") from None
    return {name: getattr(validated, name) for name in options}


def describe(exc: ValidationError) -> str:
    """The error that names the user's mistake: of a union (``hidden: 64`` or a list of widths), the member
    that got the right type and a wrong value, rather than the one that wanted another type."""
    error = min(exc.errors(), key=lambda e: (e["type"].endswith("_type"), -len(e["loc"])))
    name, *rest = error["loc"] or ("(options)",)
    where = str(name) + "".join(f"[{part}]" for part in rest if isinstance(part, int))
    given = error.get("input")
    shown = "" if error["type"] == "missing" or isinstance(given, dict) else f" (got {given!r})"
    return f"{where}: {error['msg']}{shown}"
