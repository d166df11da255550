"""Training: the teaching case library (de-identified registry cases with images, labels, the expert
plan and the outcome) and the scoring of a trainee's plan against the expert plan and the ground
truth, every point lost explained.

`teaching_case` builds one in memory (a phantom and the planner's plan, for the demo);
`add_case` puts a case (image, labels, expert `Plan`) into a library folder with its computed
difficulty; `list_entries` / `load_case` / `export_case` search and hand it out; `score_plan`
scores a trainee's plan (rubric in ``data/rubric.yaml``). May import core, io, physics, plan,
verify, seeds and registry; web and report build on it.
"""

from .difficulty import case_difficulty, case_measures, load_difficulty_rule
from .library import (
    CaseFacts,
    TeachingCase,
    add_case,
    deidentified_plan,
    entries_json,
    export_case,
    list_entries,
    load_case,
    read_entry,
    read_plan,
    teaching_case,
)
from .models import (
    CaseOutcome,
    CriterionScore,
    Difficulty,
    DifficultyHit,
    LibraryEntry,
    PathCheck,
    PlanScore,
)
from .registry_source import case_from_registry
from .rubric import Rubric, load_rubric
from .scoring import insertions, plan_zones, score_masks, score_plan
from .seed_scoring import score_seed_plan, seed_ground
from .trainee_plan import TraineePlanIn, parse_trainee_plan, plan_from_needles, read_trainee_plan

__all__ = [
    "CaseFacts",
    "CaseOutcome",
    "CriterionScore",
    "Difficulty",
    "DifficultyHit",
    "LibraryEntry",
    "PathCheck",
    "PlanScore",
    "Rubric",
    "TeachingCase",
    "TraineePlanIn",
    "add_case",
    "case_difficulty",
    "case_from_registry",
    "case_measures",
    "deidentified_plan",
    "entries_json",
    "export_case",
    "insertions",
    "list_entries",
    "load_case",
    "load_difficulty_rule",
    "load_rubric",
    "parse_trainee_plan",
    "plan_from_needles",
    "plan_zones",
    "read_entry",
    "read_plan",
    "read_trainee_plan",
    "score_masks",
    "score_plan",
    "score_seed_plan",
    "seed_ground",
    "teaching_case",
]
