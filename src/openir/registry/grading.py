"""Adverse-event grades derived from raw facts.

The registry stores what happened (was it fixed in the same session, which treatment, how many
unplanned hours in hospital, ICU, sequelae, death), never a grade typed by hand: grades differ
between classifications and observers, facts do not. The grades follow

* CIRSE 2017 -- Filippiadis DK et al., "Cirse Quality Assurance Document and Standards for
  Classification of Complications: The Cirse Classification System", CVIR 2017;40:1141-1146:
  1 solved within the same session, no additional therapy, no sequelae, no deviation from the
  normal post-therapeutic course; 2 prolonged observation incl. overnight stay (< 48 h), no
  additional post-procedure therapy; 3 additional post-procedure therapy or prolonged stay
  (> 48 h), no sequelae; 4 permanent mild sequelae (resuming work and independent living);
  5 permanent severe sequelae (ongoing assistance in daily life); 6 death.
* SIR 2003 -- Sacks D et al., "Society of Interventional Radiology clinical practice guidelines",
  JVIR 2003;14:S199-S202: A no therapy, no consequence; B nominal therapy, no consequence, incl.
  overnight admission for observation only; C therapy, minor hospitalisation (< 48 h); D major
  therapy, unplanned increase in level of care, prolonged hospitalisation (> 48 h); E permanent
  adverse sequelae; F death. C-F are *major*.
* SIR 2017 -- Khalilzadeh O et al., "Proposal of a New Adverse Event Classification by the SIR
  Standards of Practice Committee", JVIR 2017;28:1432-1437: 1 mild (no or nominal therapy);
  2 moderate (moderate escalation of care, substantial treatment such as transfusion or
  drainage); 3 severe (marked escalation: admission or prolonged stay > 24 h, ICU transfer,
  complex intervention); 4 life-threatening or disabling; 5 death.

Reading choices where the papers leave room (documented so they can be reviewed): "nominal"
therapy (e.g. a single analgesic dose) is not "additional therapy" for CIRSE; an unplanned stay
of 0 < h <= 48 without therapy is CIRSE 2 / SIR B; severe sequelae count as "disabling" for SIR
2017 and mild sequelae as SIR 2017 grade 3.
"""

from __future__ import annotations

from dataclasses import dataclass

from openir.core.errors import InputError

from .enums import Sequelae, Therapy

THERAPIES = ("none", "nominal", "additional", "major")
SEQUELAE = ("none", "mild", "severe")


@dataclass(frozen=True)
class AEFacts:
    """What happened, in terms an observer can record without grading.

    ``extra_stay_h``: unplanned hours in hospital beyond the normal course for this procedure.
    ``therapy``: none; nominal (single dose, no consequence); additional (specific treatment after
    the procedure: transfusion, drain, antibiotics course, repeat intervention under local
    anaesthesia); major (surgery, complex intervention under general anaesthesia, organ support).
    """

    resolved_in_session: bool = False
    therapy: Therapy = "none"
    extra_stay_h: float = 0.0
    icu: bool = False
    life_threatening: bool = False
    sequelae: Sequelae = "none"
    death: bool = False

    def __post_init__(self) -> None:
        if self.therapy not in THERAPIES:
            raise InputError(f"therapy must be one of {', '.join(THERAPIES)}, got {self.therapy!r}", field="therapy")
        if self.sequelae not in SEQUELAE:
            raise InputError(f"sequelae must be one of {', '.join(SEQUELAE)}, got {self.sequelae!r}", field="sequelae")
        if self.extra_stay_h < 0:
            raise InputError(f"extra_stay_h must be >= 0, got {self.extra_stay_h}", field="extra_stay_h")


def cirse_grade(f: AEFacts) -> int:
    """CIRSE 2017 grade 1-6."""
    if f.death:
        return 6
    if f.sequelae == "severe":
        return 5
    if f.sequelae == "mild":
        return 4
    if f.therapy in ("additional", "major") or f.icu or f.extra_stay_h > 48:
        return 3
    if f.extra_stay_h > 0:
        return 2
    return 1


def sir_2003_grade(f: AEFacts) -> str:
    """SIR 2003 class A-F (C-F are major)."""
    if f.death:
        return "F"
    if f.sequelae != "none":
        return "E"
    if f.therapy == "major" or f.icu or f.extra_stay_h > 48:
        return "D"
    if f.therapy == "additional":
        return "C"
    if f.therapy == "nominal" or f.extra_stay_h > 0:
        return "B"
    return "A"


def sir_2017_grade(f: AEFacts) -> int:
    """SIR 2017 severity 1 (mild) - 5 (death)."""
    if f.death:
        return 5
    if f.life_threatening or f.sequelae == "severe":
        return 4
    if f.icu or f.therapy == "major" or f.extra_stay_h > 24 or f.sequelae == "mild":
        return 3
    if f.therapy == "additional":
        return 2
    return 1


def is_major(f: AEFacts) -> bool:
    """Major adverse event: SIR 2003 class C-F (the registry's major-AE indicator uses this)."""
    return sir_2003_grade(f) in "CDEF"


def grade_all(f: AEFacts) -> dict[str, object]:
    return {"cirse_grade": cirse_grade(f), "sir_2003": sir_2003_grade(f), "sir_2017": sir_2017_grade(f),
            "major": is_major(f)}
