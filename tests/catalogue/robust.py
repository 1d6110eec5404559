"""Robust recipes that cannot work: budgets that do not fit the inputs' range, attacks with no steps,
ranges the data leaves, methods that need a teacher where there is none, objectives an adversarial method
would silently replace, inputs no gradient can change, tasks and streams attacks do not apply to."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.catalogue import recipe

QUICK = {"epochs": 1, "batch_size": 256}
STUDENT = {"model": {"source": "mlp", "hidden": 8}, "train": QUICK}
TEACHER = {"model": {"source": "mlp", "hidden": 8}, "train": QUICK}


def robust(tmp: Path, stages: dict | None = None, data: dict | None = None, **block) -> list[str]:
    """A digits recipe with a robust block (PGD for the student by default, so no teacher is needed) and
    ``stages`` in place of the one small student."""
    body = {
        "robust": {"epsilon": 0.1, "steps": 2, "student": "pgd", **block},
        **(stages or {"student": STUDENT}),
        "data": data or {"source": "digits"},
    }
    return recipe(tmp, {k: v for k, v in body.items() if v is not None})


def text_with_hf_student(tmp: Path) -> list[str]:
    (tmp / "reviews.csv").write_text("text,label\n" + "".join(f"good film {i},a\nbad film {i},b\n" for i in range(8)))
    data = {"source": f"csv:{tmp / 'reviews.csv'}", "options": {"text_column": "text"}}
    student = {"model": {"source": f"hf:{tmp / 'tiny-bert'}", "max_length": 8}, "train": QUICK}
    return robust(tmp, {"student": student}, data)


CASES: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "L∞ budget as wide as the input range": (
        lambda t: robust(t, epsilon=2.0, input_range=[0, 1]),
        "robust.epsilon 2 does not fit the inputs' range [0, 1]: an L∞ budget must be smaller than the range's width",
    ),
    "L2 budget beyond the diagonal of the input box": (
        lambda t: robust(t, norm="l2", epsilon=9.0),
        "robust.epsilon 9 does not fit the inputs' range [0, 1]: an L2 budget must be smaller than the diagonal",
    ),
    "evaluation budget wider than the input range": (
        lambda t: robust(t, evaluate={"epsilon": 1.5}),
        "robust.evaluate.epsilon 1.5 does not fit the inputs' range [0, 1]",
    ),
    "negative attack steps": (
        lambda t: robust(t, steps=-1),
        "robust.steps: Input should be greater than or equal to 1 (got -1)",
    ),
    "no restarts in the evaluation attack": (
        lambda t: robust(t, evaluate={"restarts": 0}),
        "robust.evaluate.restarts: Input should be greater than or equal to 1",
    ),
    "negative attack budget": (
        lambda t: robust(t, epsilon=-0.1),
        "robust.epsilon: Input should be greater than 0 (got -0.1)",
    ),
    "input range the data goes beyond": (
        lambda t: robust(t, input_range=[0, 0.5]),
        "robust.input_range [0, 0.5]: the train inputs reach 1 (raw units)",
    ),
    "input range upside down": (
        lambda t: robust(t, input_range=[1, 0]),
        "input_range [1, 0] must go from a low value to a higher one",
    ),
    "unknown robust method": (
        lambda t: robust(t, student="rsald"),
        "unknown robust method 'rsald' (did you mean \"rslad\"?)",
    ),
    "robust method option out of range": (
        lambda t: robust(t, student={"name": "trades", "beta": -1}),
        "robust method 'trades': beta: Input should be greater than 0",
    ),
    "distilling method for the teacher": (
        lambda t: robust(t, {"teacher": TEACHER, "student": STUDENT}, teacher="rslad"),
        "robust.teacher: 'rslad' distils from a robust teacher, and the teacher trains without one",
    ),
    "distilling student without a teacher": (
        lambda t: robust(t, student="ard"),
        "robust.student: 'ard' distils from a robust teacher: add a teacher stage",
    ),
    "objective the adversarial method would replace": (
        lambda t: robust(t, {"teacher": TEACHER, "student": {**STUDENT, "objective": {"name": "kd"}}}),
        "student.objective: robust.student 'pgd' trains with its own loss, so the objective (kd) would not be used",
    ),
    "adversarial training on token ids": (
        text_with_hf_student,
        "reads token ids, and a gradient attack changes numbers, not tokens",
    ),
    "robust block on a regression task": (
        lambda t: robust(t, data={"source": "friedman1", "task": "regression", "options": {"num_samples": 100}}),
        "robust: attacks and robust accuracy are for classification; data.task is 'regression'",
    ),
    "robust block on a continual stream": (
        lambda t: recipe(t, {"robust": {"epsilon": 0.1, "student": "pgd"}, "continual": {"strategies": ["naive"]}}),
        "robust: adversarial training runs a recipe's teacher and student stages, not a continual stream",
    ),
    "robust block on an unlearning run": (
        lambda t: recipe(
            t,
            {
                "robust": {"epsilon": 0.1, "student": "pgd"},
                "unlearning": {"forget": {"fraction": 0.1}, "methods": ["finetune"], "epochs": 1},
            },
        ),
        "robust: adversarial training runs a recipe's teacher and student stages, not an unlearning run",
    ),
    "robust baseline without a baseline student": (
        lambda t: robust(t, baseline="trades"),
        "robust.baseline: the recipe trains no student alone",
    ),
}
