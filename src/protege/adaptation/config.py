"""The ``adaptation:`` block of a recipe: the unlabelled target (another data source, or a fixed shift of
the recipe's own data), the methods to compare (each trains the recipe's student from the same initial
weights) and how a method's model is selected without the target's test labels."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from protege.named import NamedOptions, named_list


class TargetConfig(BaseModel):
    """Where the target's inputs come from: a data source of its own (``source`` + ``options``), or the
    recipe's data under a fixed ``shift`` (a share of its training examples moved to the target)."""

    model_config = ConfigDict(extra="forbid")
    source: str | None = Field(None, description="a data source for the target (csv:path, npz:path, digits...)")
    options: dict[str, Any] = Field(default_factory=dict, description="the target source's options")
    shift: Literal["rotate", "noise", "permute"] | None = Field(
        None, description="the target is the recipe's data rotated, with Gaussian noise, or features permuted"
    )
    amount: float | None = Field(
        None, gt=0, description="rotate: degrees (default 30); noise: standard deviation in units of the inputs' (1)"
    )
    share: float = Field(
        0.5, gt=0, lt=1, description="shift: the share of the training examples that become the (unlabelled) target"
    )
    test_fraction: float = Field(0.3, gt=0, lt=1, description="source: the target's share held out as its test split")
    val_fraction: float = Field(0.1, ge=0, lt=1, description="source: the target's share held out for validation")

    @model_validator(mode="after")
    def _one_way(self) -> TargetConfig:
        if (self.source is None) == (self.shift is None):
            raise ValueError("target: give either source (a data source of its own) or shift (of the recipe's data)")
        if self.shift is None and self.amount is not None:
            raise ValueError("target.amount sizes a shift; a target source has none: remove amount")
        if self.shift is not None and self.options:
            raise ValueError("target.options are a target source's; a shifted target has none: remove options")
        return self


class AdaptationMethodConfig(NamedOptions):
    """A domain-adaptation method by name (source_only, adabn, dann, cdan, mdd) and its options."""


class AdaptationConfig(BaseModel):
    """Train the recipe's student on the labelled source with each method, and score every model on the
    target's test split (docs/adaptation.md)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    target: TargetConfig
    methods: named_list(AdaptationMethodConfig, "method") = Field(
        default_factory=lambda: [AdaptationMethodConfig(name=n) for n in ("source_only", "dann")],
        min_length=1,
        description="methods to compare, each from the same initial weights",
    )
    select: Literal["source", "last", "target_val"] = Field(
        "source",
        description="the epoch a method ends with: source (best source validation score, the standard "
        "unsupervised choice), last (the final epoch), target_val (best on a labelled target validation "
        "split: an oracle, as it reads target labels)",
    )
    features: str | None = Field(
        None, description="the module whose output the domain heads read (default: the input of the model's head)"
    )
