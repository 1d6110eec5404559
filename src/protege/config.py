"""A recipe as pydantic models: the schema, the one-line errors naming a bad field, overrides and the
resolved YAML a run records. Reading a recipe (YAML, then the schema, then cross-field checks) is
protege.recipe_reader."""

from __future__ import annotations

import re
import types
import typing
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from protege.adaptation.config import AdaptationConfig
from protege.continual.config import ContinualConfig
from protege.errors import ConfigError, did_you_mean
from protege.multitask.config import MultitaskConfig
from protege.robust.config import RobustConfig
from protege.unlearning.config import UnlearningConfig


class Strict(BaseModel):
    """A config block that refuses unknown fields (a typo must never be silently ignored)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(Strict):
    """Where the labelled examples come from and how they are split."""

    source: str = Field(description="digits, mnist1d, csv:path or npz:path")
    options: dict[str, Any] = Field(default_factory=dict, description="source options, e.g. label_column")
    val_fraction: float = Field(0.1, ge=0, lt=1, description="share of train held out for validation")
    test_fraction: float = Field(0.2, gt=0, lt=1, description="share held out for test, if the source has none")
    standardize: bool = Field(False, description="scale each input feature to zero mean, unit variance")
    task: Literal["classification", "multilabel", "regression"] = Field(
        "classification",
        description="what the targets are: one class per example, several 0/1 labels, or real values (protege.tasks)",
    )


class TransferConfig(Strict):
    """Extra unlabeled inputs that only the teacher labels (the 'transfer set' of Hinton et al.)."""

    source: str = Field(
        description="a data source (its inputs only), texts:path (one text per line), or derived from the training "
        "inputs: mixup, or for texts word_mask, word_delete, span_mix"
    )
    options: dict[str, Any] = Field(default_factory=dict)
    limit: int | None = Field(None, gt=0, description="use at most this many examples")


class ModelConfig(BaseModel):
    """A model source plus its architecture options (``width``, ``depth``, ``hidden``...)."""

    model_config = ConfigDict(extra="allow")
    source: str = Field(description="mlp, cnn1d, cnn2d, resnet or run:path")

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class ObjectiveConfig(BaseModel):
    """A named objective and its options; several may be listed and their weighted terms summed."""

    model_config = ConfigDict(extra="allow")
    name: str = "ce"
    weight: float = Field(1.0, ge=0)

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class StrategyConfig(BaseModel):
    """A transfer-learning strategy (which parameters train, when, at which learning rate) and its options."""

    model_config = ConfigDict(extra="allow")
    name: str = Field(description="linear_probe, finetune, gradual_unfreeze, discriminative_lr, l2sp or lora")
    batchnorm: Literal["train", "frozen_stats", "frozen"] = Field(
        "frozen_stats", description="BatchNorm in frozen parts: train, frozen_stats (eval mode) or frozen (+ affine)"
    )

    @property
    def options(self) -> dict[str, Any]:
        return {"batchnorm": self.batchnorm, **(self.model_extra or {})}


class AugmentConfig(BaseModel):
    """One augmentation of the training split (protege.data.augment) and its options; a bare name is one
    with its defaults."""

    model_config = ConfigDict(extra="allow")
    name: str = Field(
        description="random_resized_crop, random_crop, horizontal_flip, trivial_augment, rand_augment, "
        "random_erasing, gaussian_noise, mixup or cutmix"
    )

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class TrainConfig(Strict):
    """One training run: optimizer, schedule, precision, stopping and checkpoints."""

    epochs: int = Field(20, ge=1)
    batch_size: int = Field(128, ge=1)
    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD only")
    schedule: Literal["constant", "cosine", "step", "onecycle"] = "cosine"
    warmup_epochs: float = Field(0.0, ge=0)
    step_epochs: int = Field(10, ge=1, description="step schedule: epochs between decays")
    step_gamma: float = Field(0.1, gt=0, le=1)
    grad_clip: float | None = Field(None, gt=0, description="max gradient norm")
    grad_accumulation: int = Field(1, ge=1)
    teacher_batch_size: int | None = Field(
        None,
        ge=1,
        description="examples per forward of an online (uncached) teacher, in whole training batches "
        "(default: one batch on a GPU; about 1024 examples on a CPU)",
    )
    group_by_length: bool = Field(
        False,
        description="texts: batches of similar token counts (Hugging Face Trainer's group_by_length), so less of "
        "each batch is padding; the epoch's batches are still seeded by (seed, epoch)",
    )
    inference_runtime: Literal["auto", "eager", "onnxruntime", "bf16", "compile"] = Field(
        "auto",
        description="runtime of the frozen teacher's and backbone's inference passes (auto: the fastest that "
        "agrees with eager PyTorch, tried when a pass would take 20 s or more; see protege.inference_runtime)",
    )
    inference_tolerance: float = Field(
        1e-3, gt=0, le=1, description="largest difference from eager outputs another runtime may show (relative)"
    )
    mixed_precision: Literal["auto", "no", "fp16", "bf16"] = "auto"
    channels_last: bool | Literal["auto"] = Field(
        "auto", description="channels-last memory for image models (auto: on a GPU)"
    )
    compile: bool = Field(False, description="torch.compile the model before training (pays off on a GPU)")
    monitor: str = Field(
        "val_accuracy",
        pattern=r"^val_[a-z0-9_]+$",
        description="the validation value that picks the best epoch and stops early: val_loss or val_<metric> "
        "of the task (default: val_accuracy; a regression task's val_loss, a multi-label task's val_micro_f1)",
    )
    patience: int | None = Field(None, ge=1, description="early stopping: epochs without improvement")
    restore_best: bool = Field(True, description="end with the weights of the best validation epoch")
    checkpoint_every: int | None = Field(None, ge=1, description="also checkpoint every N optimizer steps")
    checkpoint_seconds: float = Field(
        30.0,
        ge=0,
        description="epoch-end checkpoints at most this often (the last epoch of a stage always has one), so "
        "short epochs do not spend their time writing; a kill then costs at most this much work; 0: every epoch",
    )
    keep_checkpoints: int = Field(2, ge=1)
    log_every: int = Field(10, ge=1, description="steps between progress-bar loss updates")
    skip_nonfinite_steps: int = Field(
        0,
        ge=0,
        description="skip up to this many batches whose loss is NaN or infinite (checked every step), "
        "then stop; 0 stops at the first",
    )
    augment: list[AugmentConfig] = Field(
        default_factory=list,
        description="augmentations of this stage's training batches, in order (never of val/test): per-example "
        "transforms, then at most one of mixup/cutmix; a distilling stage's teacher sees the augmented batch",
    )

    augment_views: int | None = Field(
        None,
        ge=1,
        le=1000,
        description="draw this many augmented views of each training example once (in memory; no mixup/cutmix) "
        "and read view epoch mod K in each epoch, so a distilling stage's teacher is cached on all of them: "
        "an approximation of function matching's fresh draws (none: fresh draws, the teacher online)",
    )

    @field_validator("augment", mode="before")
    @classmethod
    def _named(cls, value: Any) -> Any:
        """``augment: [horizontal_flip, {name: mixup, alpha: 0.2}]``: a bare name is a block with its defaults."""
        if isinstance(value, (str, dict)):
            value = [value]
        if isinstance(value, list):
            return [{"name": item} if isinstance(item, str) else item for item in value]
        return value


class StageConfig(Strict):
    """A model to train (or just load, when ``train`` is absent) with an objective."""

    model: ModelConfig
    train: TrainConfig | None = None
    objective: ObjectiveConfig | list[ObjectiveConfig] = Field(default_factory=ObjectiveConfig)
    strategy: StrategyConfig | None = Field(None, description="transfer-learning strategy; none: everything trains")

    @property
    def objectives(self) -> list[ObjectiveConfig]:
        return self.objective if isinstance(self.objective, list) else [self.objective]


class StudentConfig(StageConfig):
    """The student stage, usually distilled from the teacher."""

    baseline: bool | TrainConfig = Field(
        False,
        description="also train the same student alone (ce) for comparison: true reuses the student's "
        "training settings, a train block gives the baseline its own",
    )

    def baseline_stage(self) -> StageConfig | None:
        """The student architecture trained alone with cross-entropy, or None without a baseline."""
        if self.baseline is False:
            return None
        train = self.train if self.baseline is True else self.baseline
        return StageConfig(model=self.model, train=train, objective=[], strategy=self.strategy)

    teacher_cache: Literal["auto", "memory", "disk", "off"] = "auto"
    teacher_weights: list[float] | None = Field(
        None, description="several teachers: the weight of each one's soft targets (default: equal)"
    )
    generations: int = Field(
        1,
        ge=1,
        description="born-again training: each further generation (same architecture, fresh weights) "
        "distils from the one before",
    )

    @model_validator(mode="after")
    def _positive_weights(self) -> StudentConfig:
        if self.teacher_weights is not None and any(w <= 0 for w in self.teacher_weights):
            raise ValueError(f"teacher_weights must all be positive, got {self.teacher_weights}")
        return self


class EvaluateConfig(Strict):
    """What the evaluate stage measures on the test split."""

    latency: bool = True
    latency_batch_sizes: list[Annotated[int, Field(ge=1, le=4096)]] = Field(
        default_factory=lambda: [1, 64], min_length=1, description="batch sizes to time, each 1 to 4096"
    )
    threads: int | None = Field(
        1, ge=1, le=256, description="CPU threads for latency; 1 (default) is comparable across machines, null: all"
    )
    fairness_margin: float = Field(
        0.05, ge=0, le=1, description="flag a class or group whose accuracy drop exceeds the average drop by this"
    )
    html: bool = Field(True, description="also write report.html (plots embedded) next to report.json")


class TrackConfig(Strict):
    """Experiment tracking: per-epoch metrics and final test metrics into TensorBoard and/or MLflow."""

    tensorboard: bool = Field(False, description="write <run>/tensorboard (SummaryWriter event files)")
    mlflow: bool = Field(False, description="log to a local MLflow file store in <run>/mlruns")
    experiment: str | None = Field(None, description="MLflow experiment name; default: the recipe name")


STAGE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
RESERVED_STAGE_NAMES = frozenset({"student", "teacher", "config", "metrics", "report", "tensorboard", "mlruns"})
PARADIGM_BLOCKS = ("continual", "robust", "unlearning", "adaptation", "multitask")


class Recipe(Strict):
    """A whole pipeline: data, optional transfer set, teacher, student, evaluation."""

    name: str = Field(
        "run",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="names the default run directory runs/<name>: letters, digits, '.', '_' and '-' only",
    )
    seed: int = Field(0, ge=0, le=2**32 - 1, description="seeds the splits, weights and data order: 0 to 2**32 - 1")
    output_dir: str | None = None
    data: DataConfig
    transfer: TransferConfig | None = None
    teacher: StageConfig | list[StageConfig] | None = Field(
        None, description="one teacher stage, or a list of them whose soft targets are averaged"
    )
    student: StudentConfig | None = None
    students: dict[str, StudentConfig] | None = Field(
        None,
        description="more students beside student, each distilled from the same teacher on the same examples "
        "(each reading its own inputs) and named by its key; the report compares them side by side",
    )
    continual: ContinualConfig | None = Field(
        None, description="learn the data as a stream of experiences, the student trained on each in turn"
    )
    robust: RobustConfig | None = Field(
        None, description="train the stages under attack (PGD, TRADES, ARD, RSLAD) and report robust accuracy"
    )
    unlearning: UnlearningConfig | None = Field(
        None, description="train the student, forget examples, and measure each method against retraining"
    )
    adaptation: AdaptationConfig | None = Field(
        None, description="train the student on a labelled source with each domain-adaptation method, score the target"
    )
    multitask: MultitaskConfig | None = Field(
        None, description="learn several label columns with one head each over a shared backbone (docs/multitask.md)"
    )
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    track: TrackConfig = Field(default_factory=TrackConfig)

    @model_validator(mode="after")
    def _has_a_stage(self) -> Recipe:
        if self.teacher is None and self.student is None:
            raise ValueError("a recipe needs a 'teacher' or a 'student' stage")
        if isinstance(self.teacher, list) and len(self.teacher) < 2:
            raise ValueError("teacher: a list of teachers needs at least two; give one teacher as a block")
        weights = self.student.teacher_weights if self.student is not None else None
        if weights is not None and len(weights) != len(self.teacher_stages):
            raise ValueError(
                f"student.teacher_weights has {len(weights)} weights for {len(self.teacher_stages)} teacher(s)"
            )
        return self

    @model_validator(mode="after")
    def _further_students(self) -> Recipe:
        """Further students distil from the teacher beside ``student``: each needs both, a name of its own,
        one generation and no baseline (the main student's baseline is the one comparison)."""
        if not self.students:
            return self
        if self.student is None or self.teacher is None:
            raise ValueError("students: further students distil beside 'student' from a 'teacher'; name both")
        for name, stage in self.students.items():
            if not STAGE_NAME.match(name) or name in RESERVED_STAGE_NAMES or name.startswith(("teacher", "student_")):
                raise ValueError(
                    f"students: {name!r} cannot name a student: use letters, digits, '_' and '-' (not teacher..., "
                    f"student_... or {', '.join(sorted(RESERVED_STAGE_NAMES))})"
                )
            if stage.generations != 1 or stage.baseline is not False:
                raise ValueError(f"students.{name}: generations and baseline belong to 'student' alone")
        block = next((b for b in PARADIGM_BLOCKS if getattr(self, b) is not None), None)
        if block is not None:
            raise ValueError(f"students: further students are for distillation recipes, not with a {block} block")
        return self

    @model_validator(mode="after")
    def _continual_shape(self) -> Recipe:
        """A continual recipe trains its student on each experience; the stream's strategies take the
        place of teachers, transfer sets, baselines and generations."""
        if self.continual is None:
            return self
        student = self.student
        if student is None or student.train is None:
            raise ValueError("continual: the stream trains the recipe's student; give a student block with train")
        if self.teacher is not None:
            raise ValueError("continual: a continual recipe has no teacher stage (LwF, iCaRL and DER teach from "
                             "the model's own past); remove teacher")  # fmt: skip
        self._one_student_run("continual", "a continual stream", "streams are of classification data")
        return self

    @model_validator(mode="after")
    def _unlearning_shape(self) -> Recipe:
        """An unlearning recipe trains its student (and the same model without the forgotten examples)."""
        if self.unlearning is None:
            return self
        if self.continual is not None:
            raise ValueError("unlearning and continual are two kinds of run; give one of them")
        student = self.student
        if student is None or student.train is None:
            raise ValueError("unlearning: the model to forget with is the recipe's student; give it a train block")
        self._one_student_run("unlearning", "an unlearning run", "the measures are for classification")
        return self

    @model_validator(mode="after")
    def _adaptation_shape(self) -> Recipe:
        """An adaptation recipe trains its student once per method, from the same initial weights."""
        if self.adaptation is None:
            return self
        for block in ("continual", "unlearning", "robust", "multitask"):
            if getattr(self, block) is not None:
                raise ValueError(f"adaptation and {block} are two kinds of run; give one of them")
        student = self.student
        if student is None or student.train is None:
            raise ValueError("adaptation: each method trains the recipe's student; give a student block with train")
        self._one_student_run("adaptation", "an adaptation run", "the methods adapt classifiers")
        return self

    @model_validator(mode="after")
    def _multitask_shape(self) -> Recipe:
        """A multi-task recipe trains one multi-head student (with teachers: one single-task teacher per task,
        each head distilled from its own); each task has its own type and the step its own losses."""
        if self.multitask is None:
            return self
        for block in ("continual", "unlearning", "robust"):
            if getattr(self, block) is not None:
                raise ValueError(f"multitask and {block} are two kinds of run; give one of them")
        student = self.student
        if student is None or student.train is None:
            raise ValueError("multitask: the multi-head model is the recipe's student; give it a train block")
        if isinstance(self.teacher, list):
            raise ValueError("multitask: give one teacher block; it trains one single-task teacher per task")
        unused = [
            name
            for name, used in (
                ("transfer", self.transfer is not None),
                ("student.baseline", student.baseline is not False),
                ("student.generations", student.generations != 1),
                ("student.objective", not _plain_ce(student)),
                ("student.strategy", student.strategy is not None),
                ("data.task", self.data.task != "classification"),
                ("student.train.monitor", student.train.monitor not in ("val_accuracy", self.multitask.monitor)),
            )
            if used
        ]
        if unused:
            raise ValueError(
                f"multitask: {unused[0]} does not apply to a multi-task run (each task has its type, "
                "the step its losses, multitask.monitor the best epoch); remove it"
            )
        teacher = self.teacher
        if teacher is not None and (teacher.train is None or not _plain_ce(teacher) or teacher.strategy is not None):
            raise ValueError(
                "multitask: the teacher block trains each single-task teacher on its task's labels: "
                "give it a train block, no objective and no strategy (load saved ones with multitask.teacher_sources)"
            )
        if teacher is not None and teacher.train.monitor not in ("val_accuracy", "val_mean_score", "val_loss"):
            raise ValueError("multitask: teacher.train.monitor: a single-task teacher monitors val_mean_score (its "
                             "task's score) or val_loss")  # fmt: skip
        if self.multitask.teacher_sources and teacher is None:
            raise ValueError(
                "multitask.teacher_sources: teachers distil into the student; add a teacher block "
                "for the tasks without a saved teacher"
            )
        # written into the resolved recipe, so its config.yaml (and a resumed run) says what picks the best epoch
        student.train.monitor = self.multitask.monitor
        if teacher is not None and teacher.train.monitor == "val_accuracy":
            teacher.train.monitor = "val_mean_score"
        return self

    def _one_student_run(self, block: str, kind: str, why_classification: str) -> None:
        """A run of one student on classification data: the blocks of distillation do not apply."""
        student = self.student
        assert student is not None
        unused = [
            name
            for name, used in (
                ("teacher", self.teacher is not None),
                ("transfer", self.transfer is not None),
                ("student.baseline", student.baseline is not False),
                ("student.generations", student.generations != 1),
            )
            if used
        ]
        if unused:
            raise ValueError(f"{block}: {unused[0]} does not apply to {kind}; remove it")
        if self.data.task != "classification":
            raise ValueError(f"{block}: {why_classification}; data.task is {self.data.task!r}")

    @model_validator(mode="after")
    def _task_defaults(self) -> Recipe:
        """What a recipe leaves out follows its task: the objective (``mse`` for regression, ``bce`` for
        multi-label) and the value that picks the best epoch. Written into the resolved recipe, so the run's
        config.yaml says what ran."""
        if self.data.task == "classification":
            return self
        from protege.tasks import get_task

        task = get_task(self.data.task)
        for _, stage in self.stages:
            if "objective" not in stage.model_fields_set:
                stage.objective = ObjectiveConfig(name=task.default_objective)
            blocks = [
                stage.train,
                *([stage.baseline] if isinstance(getattr(stage, "baseline", None), TrainConfig) else []),
            ]
            for train in blocks:
                if train is not None and "monitor" not in train.model_fields_set:
                    train.monitor = task.monitor
        return self

    @property
    def student_stages(self) -> list[tuple[str, StudentConfig]]:
        """``student`` and the further ``students``, with their run-directory names."""
        return [("student", self.student)] * (self.student is not None) + list((self.students or {}).items())

    @property
    def stages(self) -> list[tuple[str, StageConfig]]:
        """Every teacher and student stage the recipe names, teachers first, with their run-directory names."""
        return [*self.teacher_stages, *self.student_stages]

    @property
    def teacher_stages(self) -> list[tuple[str, StageConfig]]:
        """The teacher stages with their run-directory names: ``teacher``, or ``teacher_1``, ``teacher_2``..."""
        if self.teacher is None:
            return []
        if isinstance(self.teacher, StageConfig):
            return [("teacher", self.teacher)]
        return [(f"teacher_{i}", stage) for i, stage in enumerate(self.teacher, start=1)]


def _plain_ce(stage: StageConfig) -> bool:
    """Whether a stage names no objective but the default (one ``ce``, weight 1, no options)."""
    objectives = stage.objectives
    return (
        len(objectives) == 1 and objectives[0].name == "ce" and objectives[0].weight == 1 and not objectives[0].options
    )


PLAIN = (str, int, float, bool, type(None))


def check_plain(value: Any, origin: str, path: str = "") -> None:
    """Refuse values a recipe cannot hold: YAML's ``!!binary``, ``!!set``, dates and other tags load as
    Python objects that no option takes and that the run's config.yaml could not record."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, PLAIN):
                raise ConfigError(f"{origin}: {path or '(top level)'}: a key of type {type(key).__name__}; use text")
            check_plain(item, origin, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            check_plain(item, origin, f"{path}[{i}]")
    elif not isinstance(value, PLAIN):
        raise ConfigError(
            f"{origin}: {path or '(top level)'}: a {type(value).__name__} value; a recipe holds text, numbers, "
            "true/false, lists and blocks (quote a date or other tagged value to keep it as text)"
        )


def apply_override(raw: dict, item: str) -> None:
    """Set ``a.b.c=value`` in a nested dict; the value is parsed as YAML (numbers, lists, booleans)."""
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {item!r} must look like key.path=value")
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"override {item!r}: {part!r} is not a block of fields")
        node = child
    node[parts[-1]] = parse_value(value, f"--set {item!r}")


def parse_value(text: str, what: str) -> Any:
    """A command-line value parsed as YAML (numbers, lists, booleans); invalid YAML is a one-line error
    that starts with ``what`` (the flag and the pair)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).strip().splitlines()[0]
        raise ConfigError(f"{what}: the value is not valid YAML ({problem}); quote text, as in name='[a'") from None


def describe_validation_error(exc: ValidationError, root: type[BaseModel]) -> str:
    """The most specific pydantic error as 'field.path: problem', with a suggestion for a misspelt field.

    A field that accepts several types (``baseline: true`` or a train block) yields one error per
    type; the deepest one is the one that names the user's mistake.
    """
    error = max(exc.errors(), key=lambda e: (len(_error_path(e)), e["type"] == "extra_forbidden"))
    path = _error_path(error)
    where = ".".join(str(p) for p in path) or "(top level)"
    if error["type"] == "extra_forbidden":
        fields = _fields_at(root, tuple(path[:-1]))
        hint = did_you_mean(str(path[-1]), fields) if fields else ""
        valid = f"; valid: {', '.join(fields)}" if fields and not hint else ""
        return f"{where}: unknown field{hint}{valid}"
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    given = error.get("input")
    shown = "" if error["type"] == "missing" or isinstance(given, dict) else f" (got {given!r})"
    return f"{where}: {message}{shown}"


def _field_path(loc: tuple) -> list:
    """``loc`` without the union-member tags pydantic inserts (``bool``, ``TrainConfig``, ``list[...]``)."""
    return [p for p in loc if isinstance(p, int) or (p.isidentifier() and p.islower() and p not in _TYPE_TAGS)]


def _error_path(error: dict) -> list:
    """The field path of an error; an unknown field keeps its name (the last entry) whatever it looks like."""
    path = _field_path(error["loc"][:-1] if error["type"] == "extra_forbidden" else error["loc"])
    return [*path, error["loc"][-1]] if error["type"] == "extra_forbidden" else path


_TYPE_TAGS = {"bool", "int", "float", "str", "list", "dict", "none"}


def _fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the config block at ``loc``, following Optional, unions and lists."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        block = _model_in(current)
        if block is None or part not in block.model_fields:
            return []
        current = block.model_fields[part].annotation
    block = _model_in(current)
    return list(block.model_fields) if block else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def dump_recipe(recipe: Recipe) -> str:
    """The resolved recipe (defaults filled in) as YAML, as written to a run's config.yaml."""
    return yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False)
