"""The ``unlearning:`` block of a recipe: which training examples to forget, the approximate methods to
compare, SISA's shards and slices, and the budget of the methods (each starts from the trained model)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from protege.named import NamedOptions, named_list


class ForgetConfig(BaseModel):
    """The examples to forget: a seeded share of the training split, every training example of one class,
    or source rows (ids) listed in the recipe or in a file (one per line)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    fraction: float | None = Field(None, gt=0, lt=1, description="forget this share of the training examples")
    class_name: str | None = Field(None, alias="class", description="forget every training example of this class")
    rows: list[int] | None = Field(None, min_length=1, description="source rows (ids) of training examples")
    file: str | None = Field(None, description="a text file of source rows, one per line ('#' starts a comment)")

    @model_validator(mode="after")
    def _one_way(self) -> ForgetConfig:
        given = [name for name in ("fraction", "class_name", "rows", "file") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("forget: give exactly one of fraction, class, rows or file")
        return self


class MethodConfig(NamedOptions):
    """An approximate unlearning method by name (finetune, neggrad, random_label, scrub, bad_teacher)."""


class SisaConfig(BaseModel):
    """SISA training (Bourtoule et al. 2021): the training split in ``shards`` disjoint parts, each learned
    slice by slice with a checkpoint after every slice; the shard models vote or average."""

    model_config = ConfigDict(extra="forbid")
    shards: int = Field(5, ge=2, le=100)
    slices: int = Field(4, ge=1, le=100)
    aggregate: Literal["mean", "vote"] = Field("mean", description="average the probabilities, or majority vote")
    epochs_per_slice: int | None = Field(
        None, ge=1, description="epochs after each slice is added (default: the student's epochs / slices, at least 1)"
    )


class UnlearningConfig(BaseModel):
    """Train the student, forget examples, and measure each method against retraining without them."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    forget: ForgetConfig
    methods: named_list(MethodConfig, "method") = Field(
        default_factory=list, description="approximate methods to compare"
    )
    sisa: SisaConfig | None = Field(None, description="also train with SISA and forget exactly")
    epochs: int = Field(5, ge=1, le=1000, description="epochs of each approximate method")
    lr: float | None = Field(None, gt=0, description="learning rate of the methods (default: the student's)")

    @model_validator(mode="after")
    def _something_to_do(self) -> UnlearningConfig:
        if not self.methods and self.sisa is None:
            raise ValueError("unlearning: name at least one method, or sisa, to forget with")
        return self
