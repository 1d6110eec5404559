"""Name-keyed registries (objectives, strategies, data sources, model sources), as timm's
``register_model``: one factory per registry, and one check of a name's options against the signature
that takes them (protege.options), so every kind of thing a recipe names is checked the same way."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from protege.errors import ConfigError, ProtegeError, did_you_mean
from protege.options import Fields, check_options, signature_fields

T = TypeVar("T")


def constructor_fields(entry: object) -> Fields:
    """The options an entry takes: a class's constructor arguments (its own and its bases', so a
    subclass's ``**common`` names its parents' options), or a function's arguments."""
    if not inspect.isclass(entry):
        return signature_fields(entry)  # type: ignore[arg-type]
    fields: Fields = {}
    for klass in reversed(entry.__mro__):
        if "__init__" in vars(klass) and klass.__init__ is not object.__init__:
            fields.update(signature_fields(klass.__init__))
    return fields


class Registry(Generic[T]):
    """Maps a name to a builder; unknown names and options fail in one line with the known ones.

    ``fields`` says which options an entry takes (default: its signature); ``error`` is the error class of
    this kind of thing (a data source's options are a DataError)."""

    def __init__(
        self,
        kind: str,
        fields: Callable[[T], Fields] = constructor_fields,
        error: type[ProtegeError] = ConfigError,
    ) -> None:
        self.kind = kind
        self.fields = fields
        self.error = error
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        if name not in self._entries:
            known = ", ".join(sorted(self._entries))
            raise ConfigError(f"unknown {self.kind} {name!r}{did_you_mean(name, self._entries)}; known: {known}")
        return self._entries[name]

    def check_options(self, name: str, options: dict, also_valid: Iterable[str] = (), label: str | None = None) -> dict:
        """``options`` for the entry ``name``, checked against what it takes (names, types, ranges) and
        returned as validated; anything else is one line starting with ``<kind> '<label or name>'``."""
        fields = self.fields(self.get(name))
        return check_options(f"{self.kind} {label or name!r}", fields, options, self.error, also_valid)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))
