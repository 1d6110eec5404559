"""Did the student lose accuracy evenly? Teacher and student accuracy side by side per class (and per
group, where the data has a group column), flagging the slices where the student lost much more than
on average, so that distillation does not transfer or amplify a bias unnoticed."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def accuracy_gaps(
    slices: Sequence[str], teacher_correct: torch.Tensor, student_correct: torch.Tensor, margin: float
) -> dict:
    """Per slice (class or group name of each example): count, teacher and student accuracy, the drop
    (teacher minus student), and ``flagged`` when the drop exceeds the overall drop by more than ``margin``."""
    teacher_correct, student_correct = teacher_correct.float(), student_correct.float()
    average_drop = (teacher_correct.mean() - student_correct.mean()).item()
    rows = []
    for name in dict.fromkeys(slices):  # first-seen order, without duplicates
        mask = torch.tensor([s == name for s in slices])
        teacher = teacher_correct[mask].mean().item()
        student = student_correct[mask].mean().item()
        drop = teacher - student
        rows.append(
            {
                "name": name,
                "count": int(mask.sum()),
                "teacher_accuracy": teacher,
                "student_accuracy": student,
                "drop": drop,
                "flagged": drop - average_drop > margin,
            }
        )
    return {
        "average_drop": average_drop,
        "margin": margin,
        "rows": rows,
        "flagged": [row["name"] for row in rows if row["flagged"]],
    }


def compare_to_teacher(
    class_names: Sequence[str],
    target: torch.Tensor,
    teacher_logits: torch.Tensor,
    student_logits: torch.Tensor,
    margin: float,
    groups: Sequence[str] | None = None,
) -> dict:
    """The fairness section of one student: ``per_class`` always, ``per_group`` when groups are given."""
    teacher_correct = teacher_logits.argmax(-1) == target
    student_correct = student_logits.argmax(-1) == target
    by_class = [class_names[int(i)] for i in target]
    # classes in their own order, not in the order the test split happens to list them
    order = {name: i for i, name in enumerate(class_names)}
    per_class = accuracy_gaps(by_class, teacher_correct, student_correct, margin)
    per_class["rows"].sort(key=lambda row: order[row["name"]])
    section = {"per_class": per_class}
    if groups is not None:
        section["per_group"] = accuracy_gaps(list(groups), teacher_correct, student_correct, margin)
    return section


def slice_accuracy(slices: Sequence[str], correct: torch.Tensor) -> dict[str, dict]:
    """Accuracy and example count of each slice (group) for one model."""
    correct = correct.float()
    out = {}
    for name in dict.fromkeys(slices):
        mask = torch.tensor([s == name for s in slices])
        out[name] = {"count": int(mask.sum()), "accuracy": correct[mask].mean().item()}
    return out
