"""Teacher-versus-student accuracy per class and per group, with flags, against hand counts."""

import pytest
import torch

from protege.report.fairness import accuracy_gaps, compare_to_teacher, slice_accuracy


def test_a_slice_that_lost_much_more_than_average_is_flagged():
    slices = ["a"] * 4 + ["b"] * 4
    teacher = torch.tensor([1, 1, 1, 1, 1, 1, 1, 1], dtype=torch.bool)
    student = torch.tensor([1, 1, 1, 1, 1, 0, 0, 0], dtype=torch.bool)
    gaps = accuracy_gaps(slices, teacher, student, margin=0.1)
    assert gaps["average_drop"] == pytest.approx(3 / 8)
    a, b = gaps["rows"]
    assert (a["name"], a["count"], a["drop"], a["flagged"]) == ("a", 4, 0.0, False)
    assert (b["teacher_accuracy"], b["student_accuracy"], b["drop"]) == (1.0, 0.25, 0.75)
    assert b["flagged"] and gaps["flagged"] == ["b"]
    # 0.75 - 0.375 = 0.375 is within a margin of 0.4
    assert accuracy_gaps(slices, teacher, student, margin=0.4)["flagged"] == []


def test_compare_to_teacher_lists_classes_in_class_order_and_groups_when_given():
    target = torch.tensor([2, 0, 1, 2])
    teacher = torch.nn.functional.one_hot(target, 3).float()
    student = torch.nn.functional.one_hot(torch.tensor([2, 0, 1, 0]), 3).float()
    section = compare_to_teacher(["x", "y", "z"], target, teacher, student, 0.1, groups=["g1", "g2", "g1", "g2"])
    assert [r["name"] for r in section["per_class"]["rows"]] == ["x", "y", "z"]
    assert section["per_class"]["flagged"] == ["z"]
    groups = {r["name"]: r for r in section["per_group"]["rows"]}
    assert groups["g2"]["student_accuracy"] == 0.5 and groups["g1"]["student_accuracy"] == 1.0
    assert "per_group" not in compare_to_teacher(["x", "y", "z"], target, teacher, student, 0.1)


def test_slice_accuracy_counts_each_group():
    out = slice_accuracy(["u", "v", "u"], torch.tensor([True, False, False]))
    assert out == {"u": {"count": 2, "accuracy": 0.5}, "v": {"count": 1, "accuracy": 0.0}}
