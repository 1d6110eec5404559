"""The unlearning plan: the model trained on everything (``original``), the gold standard retrained
without the forgotten examples (``retrained``), each approximate method starting from the original, and,
with ``sisa``, the shard models slice by slice and the deletion that retrains only the touched shards."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from pathlib import Path

from accelerate.utils import set_seed

from protege.config import ModelConfig, Recipe, TrainConfig
from protege.errors import ConfigError
from protege.models import build_model
from protege.plan.distillation import objective_specs
from protege.plan.runner import StageContext
from protege.plan.spec import StageResult, StageSpec
from protege.unlearning.forget_set import ForgetSplit
from protege.unlearning.methods import build_method
from protege.unlearning.sisa import ShardPlan, subset

ORIGINAL, RETRAINED = "original", "retrained"


class UnlearningPlan:
    """Yields the stages in order; ``sisa_models`` names the shard stages before and after the deletion."""

    def __init__(
        self,
        recipe: Recipe,
        split: ForgetSplit,
        context: StageContext,
        trained_run: Path | None = None,
        retrain: bool = True,
    ):
        """``trained_run``: the run whose model (and SISA shards) were trained already (``protege forget``);
        ``retrain``: also train the reference without the forgotten examples."""
        assert recipe.unlearning is not None and recipe.student is not None
        self.recipe, self.split, self.context = recipe, split, context
        self.trained_run, self.retrain = trained_run, retrain
        self.config = recipe.unlearning
        self.methods = [(m.name, build_method(m.name, m.options)) for m in self.config.methods]
        self.sisa_before: list[str] = []
        self.sisa_after: list[str] = []
        self.deletion_stages: list[str] = []
        self.shards: ShardPlan | None = None

    def stages(self, results: Mapping[str, StageResult]) -> Iterator[StageSpec]:
        student = self.recipe.student
        assert student is not None
        if self.trained_run is not None:
            yield self._loaded(ORIGINAL, self.trained_run / original_stage(self.trained_run) / "model")
        else:
            yield self._spec(ORIGINAL, "student", train_set=self.context.data.train)
        if self.retrain:
            yield self._spec(RETRAINED, "student", train_set=self.split.retain)
        method_train = self._method_train()
        for name, method in self.methods:
            # a copy: freezing the teacher must not freeze the original, which later methods continue
            teacher = method.teacher(copy.deepcopy(results[ORIGINAL].model), self._fresh_model())
            yield StageSpec(
                name=name,
                role="student",
                model=student.model,
                train=method_train,
                objectives=objective_specs(student),
                model_from=ORIGINAL,
                seed=self.recipe.seed,
                teacher_cache=student.teacher_cache,
                train_set=method.train_set(self.split, self.recipe.seed),
                step=method.step(_objective(student), self.split),
                teacher_module=teacher,
                notes={"unlearning": {"method": name, "paper": method.paper, "forgot": self.split.how}},
            )
        if self.config.sisa is not None:
            yield from self._sisa()

    def _spec(self, name: str, role: str, **fields) -> StageSpec:
        student = self.recipe.student
        assert student is not None
        return StageSpec(
            name=name,
            role=role,  # type: ignore[arg-type]
            model=student.model,
            train=student.train,
            objectives=objective_specs(student),
            strategy=student.strategy,
            seed=self.recipe.seed,
            **fields,
        )

    def _loaded(self, name: str, model_dir: Path) -> StageSpec:
        """A stage whose model an earlier run trained: loaded (and checked against the data), not trained."""
        return StageSpec(name=name, role="student", model=ModelConfig(source=f"run:{model_dir}"), save=False)

    def _method_train(self) -> TrainConfig:
        """The student's training settings with the methods' budget (epochs, learning rate), no selection
        of a best epoch (the forget set must not steer it)."""
        student = self.recipe.student
        assert student is not None and student.train is not None
        update = {"epochs": self.config.epochs, "restore_best": False, "patience": None, "warmup_epochs": 0.0}
        if self.config.lr is not None:
            update["lr"] = self.config.lr
        return student.train.model_copy(update=update)

    def _fresh_model(self):
        """A randomly initialised model of the student's architecture (the incompetent teacher)."""
        student = self.recipe.student
        assert student is not None
        data = self.context.data
        set_seed(self.recipe.seed + 1_000)
        return build_model(student.model.source, student.model.options, data.input_shape, data.class_names).module

    def _sisa(self) -> Iterator[StageSpec]:
        """Each shard slice by slice, then the deletion: touched shards retrained from the slice before
        the first one that held a forgotten example."""
        sisa = self.config.sisa
        student = self.recipe.student
        assert sisa is not None and student is not None and student.train is not None
        train = self.context.data.train
        self.shards = shards = ShardPlan.cut(len(train), sisa.shards, sisa.slices, self.recipe.seed)
        epochs = sisa.epochs_per_slice or max(1, student.train.epochs // sisa.slices)
        per_slice = student.train.model_copy(update={"epochs": epochs, "restore_best": False, "patience": None})
        forgotten = self.split.positions
        for shard in range(sisa.shards):
            for number in range(1, sisa.slices + 1):
                name = f"sisa_shard{shard + 1}_slice{number}"
                previous = f"sisa_shard{shard + 1}_slice{number - 1}" if number > 1 else None
                if self.trained_run is not None:
                    yield self._loaded(
                        name, self.trained_run / "sisa" / f"shard{shard + 1}" / f"slice{number}" / "model"
                    )
                    continue
                yield self._sisa_spec(name, per_slice, subset(train, shards.upto(shard, number)), previous, shard)
            self.sisa_before.append(f"sisa_shard{shard + 1}_slice{sisa.slices}")
        for shard in range(sisa.shards):
            first = shards.first_touched(shard, forgotten)
            if first is None:
                self.sisa_after.append(self.sisa_before[shard])
                continue
            previous = f"sisa_shard{shard + 1}_slice{first - 1}" if first > 1 else None
            for number in range(first, sisa.slices + 1):
                name = f"sisa_forget_shard{shard + 1}_slice{number}"
                kept = subset(train, shards.upto(shard, number, without=forgotten))
                yield self._sisa_spec(name, per_slice, kept, previous, shard)
                self.deletion_stages.append(name)
                previous = name
            self.sisa_after.append(previous)

    def _sisa_spec(self, name: str, train: TrainConfig, train_set, previous: str | None, shard: int) -> StageSpec:
        student = self.recipe.student
        assert student is not None
        folder = "sisa/" + name.removeprefix("sisa_").replace("_", "/", 1)
        return StageSpec(
            name=name,
            role="student",
            model=student.model,
            train=train,
            objectives=objective_specs(student),
            model_from=previous,
            seed=self.recipe.seed + shard,
            folder=folder,
            train_set=train_set,
            notes={"sisa": {"stage": name}},
        )


def _objective(student):
    from protege.objectives import build_objective

    return build_objective(list(objective_specs(student)))


def original_stage(run: Path) -> str:
    """The stage of a finished run whose model a ``forget`` request starts from: an unlearning run's
    ``original``, otherwise its ``student``."""
    for name in (ORIGINAL, "student"):
        if (run / name / "model" / "model.json").is_file():
            return name
    raise ConfigError(f"{run} has no finished original or student model to forget from; give a run that trained one")
