"""The continual plan: for each strategy, one stage per experience, in order. Stage k continues from
stage k−1's model (its head grown to the classes seen so far), trains on what the strategy gives it
(the experience, a buffer, the previous model as teacher, a penalty hook), then the strategy keeps what
the next experiences need and the plan measures the accuracy on every experience's test split, which
fills one row of the strategy's accuracy matrix.

On resume, a finished experience's model is loaded and the strategy's state comes back from the file
saved with it (``<strategy>/exp<k>/continual_state.safetensors``), or is measured again from the loaded
model where the run stopped before writing it (the same numbers: it depends on the model and data only).
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import safetensors.torch
import torch
from accelerate.utils import set_seed
from torch import nn

from protege.config import Recipe
from protege.console import log
from protege.continual.metrics import summarise
from protege.continual.strategies import ContinualStrategy, build_continual_strategy
from protege.continual.strategies.base import check_scenario
from protege.continual.streams import Experience, Stream
from protege.distributed import is_main_process
from protege.evaluate import predict_logits
from protege.models import build_model
from protege.models.store import atomic_write_bytes
from protege.plan.distillation import objective_specs
from protege.plan.runner import StageContext
from protege.plan.spec import StageResult, StageSpec

STATE_FILE = "continual_state.safetensors"


@dataclass
class StrategyRecord:
    """One strategy's way through the stream: its accuracy matrix and what each experience cost."""

    name: str
    matrix: list[list[float]] = field(default_factory=list)
    experiences: list[dict] = field(default_factory=list)
    final: StageResult | None = None
    classifier: nn.Module | None = None


class ContinualPlan:
    """Yields each strategy's experience stages; ``records`` holds what they measured."""

    def __init__(self, recipe: Recipe, stream: Stream, context: StageContext):
        assert recipe.continual is not None and recipe.student is not None
        self.recipe, self.stream, self.context = recipe, stream, context
        self.strategies = [(s.name, build_continual_strategy(s.name, s.options)) for s in recipe.continual.strategies]
        for _, strategy in self.strategies:  # all refused before the first one trains
            check_scenario(type(strategy), stream.scenario)
        self.records: dict[str, StrategyRecord] = {}
        self.untrained: list[float] = []

    def stages(self, results: Mapping[str, StageResult]) -> Iterator[StageSpec]:
        self.untrained = self._untrained_accuracy()
        for name, strategy in self.strategies:
            strategy.start(self.stream, self.recipe.seed)
            record = self.records[name] = StrategyRecord(name)
            previous: str | None = None
            for experience in self.stream.experiences:
                started = time.perf_counter()
                spec = self._spec(name, strategy, experience, previous)
                yield spec
                result = results[spec.name]
                self._keep(strategy, result, experience, spec)
                record.matrix.append(self._row(strategy.classifier(result.model)))
                record.experiences.append(self._costs(strategy, result, started))
                previous = spec.name
                log(f"[bold]{spec.name}[/]: accuracy on experiences 1..{experience.number}: "
                    + " ".join(f"{a:.3f}" for a in record.matrix[-1][: experience.number]))  # fmt: skip
            record.final = results[previous] if previous is not None else None
            record.classifier = strategy.classifier(record.final.model) if record.final is not None else None

    def _spec(self, name: str, strategy: ContinualStrategy, experience: Experience, previous: str | None) -> StageSpec:
        student = self.recipe.student
        assert student is not None
        objective = _objective(objective_specs(student))
        return StageSpec(
            name=f"{name}_{experience.name}",
            role="experience",
            model=student.model,
            train=student.train,
            objectives=objective_specs(student),
            strategy=student.strategy,
            teacher=previous if strategy.previous_as_teacher and previous is not None else None,
            model_from=previous,
            seed=self.recipe.seed,
            teacher_cache=student.teacher_cache,
            folder=f"{name}/{experience.name}",
            train_set=strategy.train_set(experience),
            val_set=strategy.val_set(experience),
            step=strategy.step(objective, experience),
            hooks=tuple(strategy.hooks(experience)),
            class_names=tuple(self.stream.known_classes(experience.number)),
            notes={"continual": self._notes(name, experience)},
        )

    def _notes(self, strategy: str, experience: Experience) -> dict:
        """What the saved model's card says of its place in the stream."""
        names = self.stream.class_names
        return {
            "scenario": self.stream.scenario,
            "strategy": strategy,
            "experience": experience.number,
            "experiences": [[names[c] for c in e.classes] for e in self.stream.seen(experience.number)],
        }

    def _keep(self, strategy: ContinualStrategy, result: StageResult, experience: Experience, spec: StageSpec) -> None:
        """The strategy's state after ``experience``: from the file a finished run saved, or measured now."""
        path = self.context.run_dir / spec.workdir / STATE_FILE
        if self.context.resume and path.is_file():
            strategy.load_state_dict(safetensors.torch.load_file(path))
            return
        strategy.end(result.model, experience)
        if is_main_process():
            state = {key: value.contiguous() for key, value in strategy.state_dict().items()}
            atomic_write_bytes(path, safetensors.torch.save(state))

    def _row(self, model: nn.Module) -> list[float]:
        """Test accuracy on every experience (task-incremental: within the experience's own classes)."""
        stream = self.stream
        row = []
        for e in stream.experiences:
            logits = predict_logits(model, e.test)
            if stream.task_aware:
                mask = stream.task_classes(logits.shape[1])[e.number - 1]
                logits = logits.masked_fill(~mask, float("-inf"))
            row.append(float((logits.argmax(1) == e.test.y).float().mean()))
        return row

    def _costs(self, strategy: ContinualStrategy, result: StageResult, started: float) -> dict:
        return {
            "seconds": time.perf_counter() - started,
            "train_seconds": result.card.metrics.get("train_seconds"),  # also for a stage finished earlier
            "state_bytes": strategy.state_bytes(),
            "peak_memory_mb": peak_memory_mb(),
        }

    def _untrained_accuracy(self) -> list[float]:
        """b_j of forward transfer: the accuracy of the initial weights on each experience."""
        student = self.recipe.student
        assert student is not None
        data = self.stream.data
        set_seed(self.recipe.seed)
        names = self.stream.known_classes(1)
        built = build_model(student.model.source, student.model.options, data.input_shape, names, data.preprocess)
        return self._row(built.module)

    def summary(self) -> dict:
        """report.json's ``continual`` block (docs/report.md)."""
        stream = self.stream
        return {
            "scenario": stream.scenario,
            "experiences": [
                {
                    "name": e.name,
                    **({"domain": stream.domains[e.number - 1]} if stream.domains else {}),
                    "classes": [stream.class_names[c] for c in e.classes],
                    "sizes": {
                        "train": len(e.train),
                        "val": len(e.val) if e.val is not None else 0,
                        "test": len(e.test),
                    },
                }
                for e in stream.experiences
            ],
            "untrained_accuracy": self.untrained,
            "strategies": {
                name: {
                    "accuracy_matrix": record.matrix,
                    **summarise(record.matrix, self.untrained),
                    "per_experience": record.experiences,
                    "seconds": sum(cost["seconds"] for cost in record.experiences),
                }
                for name, record in self.records.items()
            },
        }


def _objective(specs):
    from protege.objectives import build_objective

    return build_objective(list(specs))


def peak_memory_mb() -> float:
    """The process's peak memory so far: the GPU's allocations on a GPU, else the resident set size."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return torch.cuda.max_memory_allocated() / 1024**2
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024**2 if sys.platform == "darwin" else peak / 1024
