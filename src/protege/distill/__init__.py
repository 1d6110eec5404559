"""Distillation support: where the teacher's outputs come from (cached or online)."""

from protege.distill.teacher import CachedTeacher, OnlineTeacher, TeacherSignal, prepare_teacher

__all__ = ["CachedTeacher", "OnlineTeacher", "TeacherSignal", "prepare_teacher"]
