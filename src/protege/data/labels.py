"""Raw labels to class indices. What is clearly one label is one class (``" cat"`` and ``"cat"``; ``0``,
``"0"`` and ``0.0``), and the merge is logged; a missing or NaN label is an error, never a class."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from protege.console import log
from protege.errors import DataError

Encoder = Callable[[np.ndarray, str], np.ndarray]
"""Maps a split's raw labels (and the split's name, for errors) to class indices."""


def is_missing(value: object) -> bool:
    """None, a blank string, NaN (as a float or as the text ``nan``): no label at all."""
    if value is None:
        return True
    if isinstance(value, (float, np.floating)):
        return math.isnan(value)
    text = str(value).strip()
    return not text or text.lower() == "nan"


def canonical(value: object) -> str:
    """What identifies a raw label's class: surrounding spaces dropped, numbers written one way
    (``0``, ``0.0``, ``+0`` and ``00`` are all ``0``; ``1.50`` is ``1.5``)."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    if not math.isfinite(number):
        return text
    return str(int(number)) if number.is_integer() and abs(number) < 2**53 else repr(number)


def check_present(
    labels: Sequence[object], where: str, item: str = "example", numbers: Sequence[int] | None = None
) -> None:
    """Refuse the first missing label, naming its position in ``where``: the ``item`` number, from
    ``numbers`` (a file's line numbers) or counted from 1."""
    for i, value in enumerate(labels):
        if is_missing(value):
            shown = "a NaN label" if value is not None and str(value).strip() else "no label"
            position = numbers[i] if numbers is not None else i + 1
            raise DataError(f"{where}: {item} {position} has {shown}; give every example a label or drop it")


def class_index(y: np.ndarray, class_names: list[str] | None, source: str) -> tuple[list[str], Encoder]:
    """The class list and an encoder of labels into it: integer labels index ``class_names`` when the
    source gives them; anything else is read as names (canonical form), sorted naturally."""
    if class_names is not None and np.issubdtype(y.dtype, np.integer):
        names = list(class_names)
        return _checked(names, source), _integer_encoder(names, source)
    check_present(y, f"{source} (train split)")
    spellings = _spellings(y)
    _log_merges(spellings, source)
    # each class keeps the way its label is most often written (stripped): nothing is renamed
    display = _display_names(spellings)
    keys = sorted(display, key=lambda key: _natural_key(display[key]))
    names = [display[key] for key in keys]
    return _checked(names, source), _name_encoder(keys, names, source)


def _integer_encoder(names: list[str], source: str) -> Encoder:
    def encode(y: np.ndarray, split: str) -> np.ndarray:
        bad = (y < 0) | (y >= len(names))
        if bad.any():
            raise DataError(f"{source}: {split} label {int(y[bad][0])} is not a class index 0..{len(names) - 1}")
        return y.astype(np.int64)

    return encode


def _name_encoder(keys: list[str], names: list[str], source: str) -> Encoder:
    index = {key: i for i, key in enumerate(keys)}

    def encode(y: np.ndarray, split: str) -> np.ndarray:
        check_present(y, f"{source} ({split} split)")
        out = np.empty(len(y), dtype=np.int64)
        for i, value in enumerate(y):
            key = canonical(value)
            if key not in index:
                shown = ", ".join(names[:10])
                raise DataError(f"{source}: {split} label {key!r} is not among the training classes ({shown})")
            out[i] = index[key]
        return out

    return encode


def _checked(names: list[str], source: str) -> list[str]:
    if len(names) < 2:
        raise DataError(f"{source}: only one class ({names[0] if names else 'none'}); a classifier needs two or more")
    return names


def _spellings(y: np.ndarray) -> dict[str, dict[str, int]]:
    """For each class key, how often each raw spelling of it occurs."""
    spellings: dict[str, dict[str, int]] = {}
    for value in y:
        forms = spellings.setdefault(canonical(value), {})
        forms[str(value)] = forms.get(str(value), 0) + 1
    return spellings


def _display_names(spellings: dict[str, dict[str, int]]) -> dict[str, str]:
    """Each class's name: its most frequent spelling, stripped (ties: the canonical one, then the first in
    sorted order)."""
    names = {}
    for key, forms in spellings.items():
        stripped: dict[str, int] = {}
        for form, count in forms.items():
            stripped[form.strip()] = stripped.get(form.strip(), 0) + count
        names[key] = max(sorted(stripped), key=lambda form: (stripped[form], form == key))
    return names


def _log_merges(spellings: dict[str, dict[str, int]], source: str) -> None:
    """Say which differently written labels (spaces around them, other ways to write a number) were
    read as one class: the first few."""
    merged = [sorted(forms) for forms in spellings.values() if len(forms) > 1]
    if merged:
        shown = "; ".join(" / ".join(map(repr, forms[:4])) for forms in merged[:3])
        more = f" (and {len(merged) - 3} more)" if len(merged) > 3 else ""
        log(f"{source}: labels written differently are read as one class each: {shown}{more}")


def _natural_key(label: str) -> tuple:
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)
