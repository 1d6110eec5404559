"""The space an attack runs in. A model reads its inputs as the data pipeline left them: standardised
per feature (``data.standardize``: x_model = (x_raw − mean) / std) or raw. A budget ε, a step size and the
valid range [low, high] are stated in the *raw* units, the ones a person reads (pixels in [0, 1], sensor
values), so an attack maps the batch back to raw units, steps, projects onto the ε-ball and clips to the
range there, and hands the model the result standardised again. Stating ε in standardised units instead
would give every feature its own budget (ε · std), the common bug attack libraries warn about.

Token ids (text through a tokenizer) are integers with no gradient: they cannot be attacked this way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from protege.data.dataset import DataBundle
from protege.errors import DataError

RANGE_TOLERANCE = 1e-5
"""Raw values may pass the range by this share of its width: undoing standardisation rounds in float32."""


@dataclass(frozen=True)
class InputSpace:
    """The raw range of one input's values and the standardisation between raw and model units."""

    low: float
    high: float
    mean: torch.Tensor | None = None
    """Per feature, shaped like one input; None when the model reads raw inputs."""
    std: torch.Tensor | None = None

    @property
    def width(self) -> float:
        return self.high - self.low

    def to_raw(self, x: torch.Tensor) -> torch.Tensor:
        """Model inputs in raw units."""
        if self.mean is None or self.std is None:
            return x
        return x * self.std.to(x.device, x.dtype) + self.mean.to(x.device, x.dtype)

    def to_model(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw inputs in the units the model reads."""
        if self.mean is None or self.std is None:
            return raw
        return (raw - self.mean.to(raw.device, raw.dtype)) / self.std.to(raw.device, raw.dtype)

    def clip(self, raw: torch.Tensor) -> torch.Tensor:
        return raw.clamp(self.low, self.high)

    def describe(self) -> dict:
        """For the report: the range, and whether the model reads standardised inputs."""
        return {"input_range": [self.low, self.high], "standardized": self.mean is not None, "units": "raw"}


class RawInputModel(nn.Module):
    """``model`` behind the space's standardisation: it takes raw inputs, as attack libraries that assume
    inputs in [0, 1] (torchattacks) and users with raw pixels have them."""

    def __init__(self, model: nn.Module, space: InputSpace):
        super().__init__()
        self.model, self.space = model, space

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        return self.model(self.space.to_model(raw))


def input_space(data: DataBundle, input_range: tuple[float, float] | Literal["data"]) -> InputSpace:
    """The space of ``data``'s inputs: its standardisation (``preprocess["standardize"]``) and the range
    ``input_range`` (``data``: from the smallest to the largest raw value over every split, so clipping
    never moves a natural input). Refuses token ids and inputs outside a stated range in one line."""
    if not data.train.x.is_floating_point():
        raise DataError(
            f"{data.source}: the inputs are token ids (integers); a gradient attack changes numbers, not tokens, "
            "so adversarial training needs numeric or image inputs: remove the robust block for this data"
        )
    mean = std = None
    standardize = data.preprocess.get("standardize")
    if standardize is not None:
        shape = data.input_shape
        mean = torch.tensor(standardize["mean"], dtype=torch.float32).reshape(shape)
        std = torch.tensor(standardize["std"], dtype=torch.float32).reshape(shape)
    splits = {"train": data.train, "val": data.val, "test": data.test}
    extremes = _raw_extremes(InputSpace(0.0, 1.0, mean, std), splits)
    if input_range == "data":
        low, high = min(lo for lo, _ in extremes.values()), max(hi for _, hi in extremes.values())
        if not low < high:
            raise DataError(f"{data.source}: every input value is {low:g}; there is no range to attack in")
        return InputSpace(low, high, mean, std)
    low, high = input_range
    slack = RANGE_TOLERANCE * (high - low)
    for name, (lo, hi) in extremes.items():
        if lo < low - slack or hi > high + slack:
            beyond = lo if lo < low - slack else hi
            raise DataError(
                f"robust.input_range [{low:g}, {high:g}]: the {name} inputs reach {beyond:g} (raw units); give "
                "the range the raw inputs live in, or leave it out to take the data's"
            )
    return InputSpace(float(low), float(high), mean, std)


def _raw_extremes(space: InputSpace, splits: dict) -> dict[str, tuple[float, float]]:
    """The smallest and largest raw value of each split that has examples."""
    extremes = {}
    for name, split in splits.items():
        if split is not None and len(split):
            raw = space.to_raw(split.x)
            extremes[name] = (float(raw.min()), float(raw.max()))
    return extremes


def check_budget(space: InputSpace, norm: str, epsilon: float, input_shape: tuple[int, ...], where: str) -> None:
    """A budget must fit the range: an L∞ ε at least the range's width lets the attack put every value
    anywhere (nothing is left of the ball), and so does an L2 ε at least the diagonal of the input box."""
    if norm == "linf":
        limit, what = space.width, f"the range's width ({space.width:g})"
    else:
        values = math.prod(input_shape)
        limit = space.width * math.sqrt(values)
        what = f"the diagonal of the input box ({limit:g} = {space.width:g} · √{values})"
    if epsilon >= limit:
        raise DataError(
            f"{where} {epsilon:g} does not fit the inputs' range [{space.low:g}, {space.high:g}]: an "
            f"{'L∞' if norm == 'linf' else 'L2'} budget must be smaller than {what}, in raw units"
        )
