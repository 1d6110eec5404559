"""The ``continual:`` block of a recipe: the scenario, how the data becomes experiences, and the
strategies to compare on the same stream (each trains the recipe's student, experience after experience)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from protege.named import NamedOptions, named_list

SCENARIOS = ("class_incremental", "domain_incremental", "task_incremental")


class ContinualStrategyConfig(NamedOptions):
    """A continual-learning strategy by name (naive, joint, replay, ewc, mas, lwf, icarl, der) and its options."""


class ContinualConfig(BaseModel):
    """A stream of experiences cut from the recipe's data, and the strategies that learn it."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    scenario: Literal["class_incremental", "domain_incremental", "task_incremental"] = Field(
        "class_incremental",
        description="class_incremental: new classes per experience, no task id at test; task_incremental: the "
        "same split, the task id known at test (a head per task); domain_incremental: every class, a new "
        "input distribution per experience",
    )
    experiences: int = Field(5, ge=2, le=100, description="how many experiences the stream has")
    class_order: Literal["natural", "seeded"] | list[str | int] = Field(
        "natural",
        description="class and task incremental: the order classes arrive in: natural (the data's order), "
        "seeded (shuffled with the recipe's seed), or a list of class names",
    )
    shift: Literal["permute", "rotate", "noise", "column"] = Field(
        "permute",
        description="domain incremental: each experience permutes the input features (the first one keeps "
        "them), rotates images, adds Gaussian noise, or (column) is one domain named by the data's group "
        "column (a csv group_column), domains in sorted order",
    )
    shift_amount: float | None = Field(
        None,
        gt=0,
        description="rotate: degrees added per experience (default 180 / experiences); noise: the noise "
        "standard deviation of the last experience, in units of the inputs' standard deviation (default 1)",
    )
    strategies: named_list(ContinualStrategyConfig, "strategy") = Field(
        default_factory=lambda: [ContinualStrategyConfig(name="naive")],
        min_length=1,
        description="strategies to run on the same stream, each from the same initial weights",
    )
