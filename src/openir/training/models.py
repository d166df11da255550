"""Results of the training package that cross package borders (the JSON the CLI writes and the web
serves): a library entry with its difficulty, and a plan score with every point lost explained."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DifficultyHit(BaseModel):
    """One difficulty criterion as measured on the case."""

    id: str
    met: bool
    value: float | None = Field(None, description="the measured value (unit in the criterion's measure name)")
    threshold: float
    points: int
    description_en: str
    description_zh: str
    source: str


class Difficulty(BaseModel):
    level: str = Field(..., description="basic, intermediate or advanced (difficulty.yaml)")
    label_zh: str
    points: int
    criteria: list[DifficultyHit] = Field(default_factory=list)
    version: str = ""


class CaseOutcome(BaseModel):
    """What happened after the expert's procedure: no date, no identifier, only facts for teaching."""

    min_margin_mm: float | None = None
    technical_success: bool | None = None
    complete_ablation: bool | None = None
    local_progression: bool | None = None
    complications: list[str] = Field(default_factory=list, description="adverse events (what), no dates")
    complication_grades: list[str] = Field(default_factory=list)


class LibraryEntry(BaseModel):
    """One de-identified teaching case: what it is and where its files are inside the entry folder."""

    model_config = ConfigDict(extra="forbid")

    entry_id: str = Field(..., pattern=r"^[a-z0-9-]{4,64}$")
    title: str = ""
    organ: str
    technique: str
    tumour: str = Field(..., description="label name of the target tumour in labels.nii.gz")
    tumour_diameter_mm: float
    difficulty: Difficulty
    outcome: CaseOutcome = Field(default_factory=CaseOutcome)
    label_names: dict[int, str]
    expert_time_min: float | None = Field(None, gt=0, description="procedure duration of the expert case")
    year: int | None = Field(None, description="year of the procedure (never the exact date)")
    origin: str = Field("files", description="'registry' or 'files' (no identifier of the source)")
    files: dict[str, str] = Field(default_factory=lambda: {"image": "image.nii.gz", "labels": "labels.nii.gz",
                                                           "plan": "expert_plan.json"})


class CriterionScore(BaseModel):
    """Points of one rubric criterion: what was measured, the reference, and why points were lost."""

    id: str
    points: float
    max_points: float
    lost: float
    measured: float | None = None
    reference: float | None = None
    unit: str = ""
    expert: float | None = Field(None, description="the expert plan's value of the same measure")
    explanation_en: str = ""
    explanation_zh: str = ""
    source: str = ""


class PathCheck(BaseModel):
    """One needle insertion of the trainee's plan traced with the planner's rules."""

    entry_lps: tuple[float, float, float]
    tip_lps: tuple[float, float, float]
    feasible: bool
    blocker: str = ""
    reason: str = ""


class PlanScore(BaseModel):
    """A trainee's plan scored against the ground truth and the expert plan."""

    entry_id: str = ""
    tumour: str
    total: float
    max_total: float
    percent: float
    passed: bool
    criteria: list[CriterionScore]
    paths: list[PathCheck] = Field(default_factory=list)
    n_probes: int = Field(..., description="needle insertions (ablation) or needles (seeds)")
    expert_n_probes: int
    zone_dice_vs_expert: float = Field(..., description="overlap of the trainee's and the expert's zones "
                                       "(seeds: of the prescription isodose volumes)")
    missed_target_ml: float = Field(..., description="tumour + margin left outside every zone (seeds: below "
                                    "the prescription)")
    rubric_version: str
    notes: list[str] = Field(default_factory=list)
    seconds: float = 0.0
    kind: str = Field("ablation", description="ablation (probes and zones) or seeds (needles and seeds)")
    n_seeds: int | None = Field(None, description="seed plans: the trainee's seed count")
    expert_n_seeds: int | None = None

    @property
    def lost(self) -> dict[str, float]:
        return {c.id: c.lost for c in self.criteria if c.lost > 0}
