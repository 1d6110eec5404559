"""Multi-task learning: one model, one head per task over a shared backbone (heads.py), tasks of the core
task types side by side (layout.py: where each task's outputs and targets sit; metrics per task and their
average), the ways the task losses combine (combine.py: equal, uncertainty weighting, torchjd's gradient
aggregators), the step (steps.py), multi-teacher distillation (teachers.py), the plan (plan.py), the run
and its report (run.py, report.py) and an offline two-digit data set (data.py). docs/multitask.md explains it.

The package imports nothing heavy here: the recipe schema (config.py) is read before torch is needed."""
