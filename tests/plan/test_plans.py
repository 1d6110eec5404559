"""Plans of stages: today's recipes as the distillation plan (roles, order, hint stages, ensembles,
generations), and a plan that looks at the results so far before it yields its next stage."""

from collections.abc import Iterator, Mapping

import pytest

from protege.config import ModelConfig, TrainConfig
from protege.data.build import load_data
from protege.plan import DistillationPlan, StageContext, StageResult, StageSpec, run_plan
from protege.recipe_reader import recipe_from_dict

QUICK = {"epochs": 1, "batch_size": 256}
STUDENT = {"model": {"source": "mlp", "hidden": 8}, "train": QUICK}


def _specs(raw: dict) -> list[StageSpec]:
    return list(DistillationPlan(recipe_from_dict({"data": {"source": "digits"}, **raw})).stages({}))


def test_teacher_baseline_student_in_order_with_their_roles():
    specs = _specs({"teacher": STUDENT, "student": {**STUDENT, "objective": {"name": "kd"}, "baseline": True}})
    assert [(s.name, s.role, s.teacher) for s in specs] == [
        ("teacher", "teacher", None),
        ("student_baseline", "baseline", None),
        ("student", "student", "teacher"),
    ]
    assert specs[-1].transfer and not specs[1].transfer


def test_several_teachers_become_members_and_an_ensemble():
    specs = _specs(
        {"teacher": [STUDENT, STUDENT], "student": {**STUDENT, "objective": {"name": "kd", "temperature": 3}}}
    )
    assert [(s.name, s.role) for s in specs] == [
        ("teacher_1", "teacher_member"),
        ("teacher_2", "teacher_member"),
        ("teacher", "teacher"),
        ("student", "student"),
    ]
    assert specs[2].members == ("teacher_1", "teacher_2") and specs[2].temperature == 3


def test_born_again_generations_teach_each_other():
    specs = _specs({"teacher": STUDENT, "student": {**STUDENT, "objective": {"name": "kd"}, "generations": 3}})
    assert [(s.name, s.role, s.teacher, s.seed) for s in specs[1:]] == [
        ("student_gen1", "generation", "teacher", 0),
        ("student_gen2", "generation", "student_gen1", 1),
        ("student", "student", "student_gen2", 2),
    ]


def test_fitnet_hint_epochs_are_a_stage_of_their_own_that_the_student_continues():
    objective = {"name": "fitnet", "student_layer": "features", "teacher_layer": "features", "hint_epochs": 2}
    specs = _specs({"teacher": STUDENT, "student": {**STUDENT, "objective": objective}})
    hint, student = specs[1], specs[2]
    assert (hint.name, hint.role, hint.part_of, hint.folder, hint.save) == (
        "student_hint", "hint", "student", "student/hint", False,
    )  # fmt: skip
    assert hint.train.epochs == 2 and hint.objectives[0][1]["ce_weight"] == 0.0
    assert student.model_from == "student_hint" and student.teacher == "teacher"


class KeepTraining:
    """A plan that trains a model, then, while validation accuracy is under ``target``, continues the
    same model for another round (at most ``rounds``): each stage depends on the one before it."""

    def __init__(self, target: float, rounds: int):
        self.target, self.rounds = target, rounds

    def stages(self, results: Mapping[str, StageResult]) -> Iterator[StageSpec]:
        model = ModelConfig(source="mlp", hidden=4)
        train = TrainConfig(epochs=1, batch_size=256, lr=1e-4, schedule="constant")
        yield StageSpec("round_1", "student", model=model, train=train, objectives=(("ce", {}, 1.0),))
        for r in range(2, self.rounds + 1):
            last = results[f"round_{r - 1}"]
            if last.fit.final["val_accuracy"] >= self.target:
                return
            yield StageSpec(f"round_{r}", "student", train=train, objectives=(("ce", {}, 1.0),), model_from=last.name)


@pytest.mark.parametrize(("target", "rounds"), [(2.0, 3), (0.0, 3)])
def test_a_plan_looks_at_the_results_so_far(tmp_path, target, rounds):
    data = load_data("digits")
    context = StageContext(data, tmp_path)
    results = run_plan(KeepTraining(target, rounds).stages(context.results), context)
    expected = rounds if target > 1 else 1  # an accuracy of 2 is never reached; 0 is reached at once
    assert list(results) == [f"round_{r}" for r in range(1, expected + 1)]
    losses = [results[name].fit.history[0]["train_loss"] for name in results]
    assert losses == sorted(losses, reverse=True)  # each round continued the same model
    assert all((tmp_path / name / "model" / "model.json").is_file() for name in results)
