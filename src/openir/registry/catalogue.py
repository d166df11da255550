"""Technique catalogue and the rules of who may do what (YAML in ``registry/data``).

``check_procedure`` returns the rule violations of one procedure: a technique above what the
hospital level or the operator's credential allows, a contraindication present, a disease
outside the technique's indications. Procedures are still recorded (the registry must see what
happened) but carry the flags, which reports and ratings count.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from openir.core.datafiles import Sourced, load_packaged, load_yaml_model
from openir.core.errors import DataFileError, InputError

from .enums import CREDENTIALS, LEVELS, Credential, HospitalLevel, Tier


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Condition(_Strict):
    """One test on a per-procedure field (shared with the indicator definitions)."""

    field: str | None = None
    eq: Any = None
    ne: Any = None
    in_: list[Any] | None = Field(default=None, alias="in")
    not_in: list[Any] | None = None
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    is_null: bool | None = None
    all_present: list[str] | None = None
    why: str | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _one_op(self) -> Condition:
        ops = [k for k in ("eq", "ne", "in_", "not_in", "ge", "gt", "le", "lt", "is_null") if getattr(self, k) is not None]
        if self.all_present is not None:
            if ops or self.field:
                raise ValueError("all_present stands alone (no field, no other operator)")
            return self
        if not self.field:
            raise ValueError("a condition needs a field")
        if len(ops) != 1:
            raise ValueError(f"a condition needs exactly one operator, got {ops or 'none'}")
        return self

    def holds(self, record: dict[str, Any]) -> bool:
        """Evaluate on a plain dict (used for single records; SQL uses indicators.compile)."""
        if self.all_present is not None:
            return all(record.get(f) is not None for f in self.all_present)
        v = record.get(self.field or "")
        if self.is_null is not None:
            return (v is None) == self.is_null
        if v is None:
            return False
        if self.eq is not None:
            return v == self.eq
        if self.ne is not None:
            return v != self.ne
        if self.in_ is not None:
            return v in self.in_
        if self.not_in is not None:
            return v not in self.not_in
        for op, fn in (("ge", float.__ge__), ("gt", float.__gt__), ("le", float.__le__), ("lt", float.__lt__)):
            ref = getattr(self, op)
            if ref is not None:
                return fn(float(v), float(ref))
        return False


class Cusum(_Strict):
    p0: float = Field(gt=0, lt=1)
    p1: float = Field(gt=0, lt=1)

    @model_validator(mode="after")
    def _order(self) -> Cusum:
        if self.p1 <= self.p0:
            raise ValueError("p1 (unacceptable) must exceed p0 (acceptable)")
        return self


class Technique(_Strict):
    code: str
    name: str
    name_zh: str | None = None
    category: str
    tier: Tier
    organ: str
    indication_codes: list[str] = []  # ICD-10 stems; the diagnosis code must lie under one
    procedure_codes: list[str] = []  # ICD-9-CM Vol. 3
    indications: list[str] = []  # English wording, display only
    contraindications: list[Condition] = []
    source: str
    cusum: Cusum


class TechniqueFile(_Strict):
    version: int
    source_note: str
    techniques: list[Technique]


class Allowed(_Strict):
    allowed: list[Tier]
    source: str
    title: str | None = None


class Volume(_Strict):
    """A number of cases an operator must have done as primary operator, with its source.

    ``of``: ``all`` counts cases of every tier, ``tier`` only cases of techniques of that tier."""

    value: int = Field(ge=0)
    of: Literal["all", "tier"] = "tier"
    source: str = Field(min_length=3)
    verified: bool = False

    @model_validator(mode="after")
    def _honest(self) -> Volume:
        if self.verified and self.source.upper().startswith("NOT SOURCED"):
            raise ValueError("a NOT SOURCED value cannot be verified")
        return self


class Interval(_Strict):
    value: int = Field(gt=0)
    source: str = Field(min_length=3)
    verified: bool = False


class TierFile(_Strict):
    version: int
    tiers: list[Tier]
    hospital_levels: dict[HospitalLevel, Allowed]
    credentials: dict[Credential, Allowed]
    min_yearly_volume: dict[Tier, Sourced]
    equipment_kinds: list[str]
    training_volume: dict[Tier, Volume] = {}
    annual_volume: dict[Tier, Volume] = {}
    refresher_interval_months: dict[Tier, Interval] = {}


def load_yaml(name: str | Path, model: type[BaseModel]) -> Any:
    """A packaged table by file name (read once), or a site's own file by absolute path; errors name the file and field."""
    if Path(name).is_absolute():
        return load_yaml_model(model, name)
    return load_packaged(model, "openir.registry", f"data/{name}")


class Catalogue:
    """The technique catalogue plus the tier rules, with lookups."""

    def __init__(self, techniques: TechniqueFile, tiers: TierFile):
        self.techniques = {t.code: t for t in techniques.techniques}
        if len(self.techniques) != len(techniques.techniques):
            raise DataFileError("techniques.yaml [techniques]: technique codes must be unique")
        self.tiers = tiers

    def technique(self, code: str) -> Technique:
        try:
            return self.techniques[code]
        except KeyError:
            raise InputError(f"unknown technique {code!r}; known: {', '.join(sorted(self.techniques))}",
                             field="technique") from None

    def check_procedure(self, *, technique: str, hospital_level: str, credential: str,
                        record: dict[str, Any] | None = None) -> list[dict[str, str]]:
        """Rule violations of one procedure as ``[{"rule", "message"}]`` (empty = within the rules)."""
        t = self.technique(technique)
        flags = []
        level = self.tiers.hospital_levels.get(hospital_level)  # type: ignore[call-overload]
        if level is None:
            raise InputError(f"unknown hospital level {hospital_level!r}; one of {', '.join(LEVELS)}", field="level")
        if t.tier not in level.allowed:
            flags.append({"rule": "hospital_tier",
                          "message": f"{t.code} is a technique of tier {t.tier}; {hospital_level} hospitals may perform {', '.join(level.allowed)}"})
        cred = self.tiers.credentials.get(credential)  # type: ignore[call-overload]
        if cred is None:
            raise InputError(f"unknown credential {credential!r}; one of {', '.join(CREDENTIALS)}", field="credential")
        if t.tier not in cred.allowed:
            flags.append({"rule": "operator_tier",
                          "message": f"{t.code} is a technique of tier {t.tier}; {'an' if credential[:1] in 'aeiou' else 'a'} {credential} operator may perform {', '.join(cred.allowed)}"})
        record = record or {}
        for c in t.contraindications:
            if c.holds(record):
                flags.append({"rule": "contraindication", "message": f"{t.code}: {c.field} = {record.get(c.field or '')!r} ({c.why or 'contraindicated'})"})
        flags += self._indication_flags(t, record)
        return flags

    @staticmethod
    def _indication_flags(t: Technique, record: dict[str, Any]) -> list[dict[str, str]]:
        """Indication by ICD-10 code: the stored code, else the code resolved from the disease text."""
        from .codes import code_matches, resolve_diagnosis

        disease = _text(record.get("disease"))
        code = _text(record.get("diagnosis_code"))
        res = resolve_diagnosis(code or disease)
        if res is None:
            if disease or code:
                return [{"rule": "diagnosis_uncoded",
                         "message": f"{t.code}: diagnosis {code or disease!r} is not a known ICD-10 code or name; "
                                    "its indication cannot be checked"}]
            return []
        if t.indication_codes and not code_matches(res.code, t.indication_codes):
            name = " / ".join(x for x in (res.zh, res.en) if x) or (disease or "")
            return [{"rule": "indication",
                     "message": f"{t.code}: diagnosis {res.code} ({name}) is not among its indications "
                                f"({', '.join(t.indication_codes)}: {', '.join(t.indications)})"}]
        return []


def _text(v: Any) -> str:
    """A cell as text: '' for None / NaN / blank (pandas keeps NaN where None was meant)."""
    if v is None or (isinstance(v, float) and v != v):
        return ""
    return str(v).strip()


@lru_cache(maxsize=1)
def load_catalogue() -> Catalogue:
    """The packaged catalogue (cached)."""
    return Catalogue(load_yaml("techniques.yaml", TechniqueFile), load_yaml("tiers.yaml", TierFile))
