"""Named things a recipe lists with their options (continual strategies, unlearning and robust methods):
one block shape, a bare name standing for ``{name: ...}``, and no name twice in a list."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict


class NamedOptions(BaseModel):
    """A registered name and whatever options it takes (checked later against the entry's signature)."""

    model_config = ConfigDict(extra="allow")
    name: str

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


def names_alone(value: Any) -> Any:
    """``[naive, {name: ewc, strength: 10}]`` → every item a mapping with its ``name``."""
    if isinstance(value, list):
        return [{"name": item} if isinstance(item, str) else item for item in value]
    return value


def distinct_names(items: list, what: str) -> list:
    """Refuse a list that names one thing twice (each runs once per recipe)."""
    names = [item.name for item in items]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ValueError(f"{what} {twice[0]!r} is listed twice; each runs once per recipe")
    return items


def named_list(item: type[NamedOptions], what: str) -> Any:
    """The type of a recipe's list of named blocks: bare names allowed, no name twice (``what`` names one
    in the error: ``strategy``, ``method``)."""
    return Annotated[
        list[item], BeforeValidator(names_alone), AfterValidator(lambda items: distinct_names(items, what))
    ]
