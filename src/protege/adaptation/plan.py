"""The adaptation plan: one stage per method that trains, each the recipe's student from the same initial
weights (the recipe's seed) under its train settings. ``source_only`` trains on the source alone (AdaBN
re-uses its model, so it runs when either is named); ``dann``, ``cdan`` and ``mdd`` train on two-stream
batches. The epoch each ends with follows ``select`` (docs/adaptation.md, "How a model is selected")."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from accelerate.utils import set_seed

from protege.adaptation.adabn import require_batchnorm
from protege.adaptation.methods import ADABN, SOURCE_ONLY, build_step, paper
from protege.adaptation.steps import AdaptationStep
from protege.adaptation.target import Domains
from protege.config import Recipe, TrainConfig
from protege.data.dataset import ArrayDataset, DataBundle
from protege.errors import ConfigError
from protege.models import build_model
from protege.plan.distillation import objective_specs
from protege.plan.spec import StageResult, StageSpec


class AdaptationPlan:
    """Yields the training stage of every method that trains; ``trained`` names them in order."""

    def __init__(self, recipe: Recipe, data: DataBundle, domains: Domains):
        assert recipe.adaptation is not None and recipe.student is not None
        self.recipe, self.data, self.domains = recipe, data, domains
        self.config = recipe.adaptation
        self.names = [method.name for method in self.config.methods]
        self.steps: dict[str, AdaptationStep] = {}
        for method in self.config.methods:
            step = build_step(method.name, method.options)
            if step is not None:
                self.steps[method.name] = step.configure(self.config.features, data.num_classes, recipe.seed)
        self.trained = ([SOURCE_ONLY] if {SOURCE_ONLY, ADABN} & set(self.names) else []) + list(self.steps)
        self._check_model()

    def _check_model(self) -> None:
        """What needs the built model, before any stage trains: BatchNorm for AdaBN, the feature layer."""
        student = self.recipe.student
        assert student is not None
        set_seed(self.recipe.seed)
        module = build_model(student.model.source, student.model.options, self.data.input_shape,
                             self.data.class_names, self.data.preprocess).module  # fmt: skip
        if ADABN in self.names:
            require_batchnorm(module, student.model.source)
        if self.steps:
            from protege.adaptation.features import feature_dim

            feature_dim(module, self.config.features, self.data.train.x[:2])

    def stages(self, results: Mapping[str, StageResult]) -> Iterator[StageSpec]:
        student = self.recipe.student
        assert student is not None
        for name in self.trained:
            step = self.steps.get(name)
            yield StageSpec(
                name=name,
                role="student",
                model=student.model,
                train=self.train_config(),
                objectives=objective_specs(student),
                strategy=student.strategy,
                seed=self.recipe.seed,
                train_set=self.domains.paired() if step is not None else self.domains.source_train,
                val_set=self.val_set(),
                step=step,
                notes={"adaptation": self.note(name, step)},
            )

    def note(self, name: str, step: AdaptationStep | None) -> dict:
        """What the saved model's card records of the method."""
        record = step.describe() if step is not None else {"method": name, "paper": paper(name)}
        return {**record, "target": self.domains.how, "select": self.config.select}

    def train_config(self) -> TrainConfig:
        """The student's training settings; ``select: last`` keeps the final epoch (no best epoch, no stopping)."""
        train = self.recipe.student.train if self.recipe.student is not None else None
        assert train is not None
        if self.config.select == "last":
            return train.model_copy(update={"restore_best": False, "patience": None})
        return train

    def val_set(self) -> ArrayDataset | None:
        """The split that picks each method's epoch: the source's validation split, or the target's."""
        if self.config.select != "target_val":
            return None  # the run's validation split: the source's
        if self.domains.target_val is None or len(self.domains.target_val) == 0:
            raise ConfigError(
                "adaptation.select target_val needs a labelled target validation split: set data.val_fraction "
                "(a shifted target) or adaptation.target.val_fraction (a target source) above 0"
            )
        return self.domains.target_val
