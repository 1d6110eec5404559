"""Plans of stages. A plan yields stage specifications one after another and may look at the results so
far, so one recipe can become one stage per experience, shard or acquisition round; the runner trains
each with the one loop. Today's recipes are the distillation plan (teacher(s), baseline, student)."""

from protege.plan.distillation import DistillationPlan, objective_specs, student_stage_names
from protege.plan.runner import ENSEMBLE, StageContext, check_free_space, run_plan, run_stage
from protege.plan.spec import Role, StageResult, StageSpec

__all__ = [
    "ENSEMBLE",
    "DistillationPlan",
    "Role",
    "StageContext",
    "StageResult",
    "StageSpec",
    "check_free_space",
    "objective_specs",
    "run_plan",
    "run_stage",
    "student_stage_names",
]
