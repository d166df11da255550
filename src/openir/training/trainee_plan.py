"""A trainee's plan written by hand (or clicked in a viewer): needles as entry and tip points with a
device setting, turned into a `Plan` whose zones are the device catalogue's predicted zones.

    {"tumour": "tumour_1",
     "probes": [{"device": "emprint", "power_w": 100, "time_s": 600,
                 "entry_lps": [-135.6, -82.5, 51.8], "tip_lps": [-88.8, -21.3, 51.3]}]}

Where the catalogue gives no tip-to-zone-centre offset the planner's default (``PlanOptions.tip_offset_mm``)
is used, as ``openir plan`` does, and the plan says so.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from openir.core.errors import InputError
from openir.plan import Plan, PlannedProbe, PlanOptions, Probe, load_catalogue, predict_zone
from openir.plan.models import Provenance
from openir.seeds import SeedPlan


class NeedleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    device: str
    power_w: float | None = Field(None, gt=0)
    time_s: float | None = Field(None, gt=0)
    entry_lps: tuple[float, float, float]
    tip_lps: tuple[float, float, float]
    tip_offset_mm: float | None = Field(None, ge=0, description="tip beyond the zone centre (default: catalogue)")

    @field_validator("entry_lps", "tip_lps")
    @classmethod
    def _finite(cls, v):
        if not all(np.isfinite(v)):
            raise ValueError("coordinates must be finite numbers (mm, LPS)")
        return v


class TraineePlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tumour: str
    probes: list[NeedleIn] = Field(min_length=1, max_length=20)


def plan_from_needles(spec: TraineePlanIn) -> Plan:
    """A `Plan` from needles given as points; each zone is `predict_zone` of its device setting."""
    cat = load_catalogue()
    default_offset = PlanOptions().tip_offset_mm
    plan = Plan(provenance=Provenance(catalogue_version="", rules_version="", margins_version="", policy_version="",
                                      parameters={"source": "trainee needles"}))
    for n, nd in enumerate(spec.probes, start=1):
        entry, tip = np.asarray(nd.entry_lps, float), np.asarray(nd.tip_lps, float)
        if np.linalg.norm(tip - entry) < 1.0:
            raise InputError(f"probe {n}: entry and tip less than 1 mm apart", field=f"probes.{n - 1}.tip_lps")
        d = (tip - entry) / np.linalg.norm(tip - entry)
        try:
            dev = cat.get(nd.device)
        except Exception:  # noqa: BLE001 - unknown id: the catalogue's own message names it
            raise InputError(f"probe {n}: unknown device {nd.device!r}", field=f"probes.{n - 1}.device") from None
        probe = Probe(device=nd.device, power_w=nd.power_w, time_s=nd.time_s, tip_lps=tuple(tip), direction_lps=tuple(d),
                      entry_lps=tuple(entry))
        sourced = True
        try:
            zone = predict_zone(probe, cat) if nd.tip_offset_mm is None else None
        except InputError:
            zone = None
        if zone is None:
            off = nd.tip_offset_mm if nd.tip_offset_mm is not None else default_offset
            sourced = False
            zone = predict_zone(probe.model_copy(update={"centre_offset_mm": off}), cat)
            if nd.tip_offset_mm is None:
                plan.warnings.append(f"probe {n}: no sourced tip-to-zone-centre offset for {dev.id}; "
                                     f"the planner's default {off:g} mm is used")
        off_mm = float(np.dot(tip - np.asarray(zone.centre_lps), d))
        plan.zones.append(zone)
        plan.zone_tumour.append(spec.tumour)
        plan.probes.append(PlannedProbe(
            order=n, group=n, tumour=spec.tumour, device=dev.id, modality=dev.modality, setting=zone.setting,
            power_w=nd.power_w, time_s=nd.time_s, entry_lps=tuple(entry), tip_lps=tuple(tip), direction_lps=tuple(d),
            zone_centre_lps=zone.centre_lps, zone_index=n - 1, track=n, path_length_mm=float(np.linalg.norm(tip - entry)),
            tip_offset_mm=off_mm, tip_offset_source="catalogue" if sourced else "planner default",
            tip_offset_sourced=sourced, sources=zone.sources))
    return plan


def parse_trainee_plan(data: bytes | str, source: str = "plan") -> Plan | SeedPlan:
    """A full `Plan` JSON (as ``openir plan`` writes it), needles as points (`TraineePlanIn`), or a
    seed-implant plan (`SeedPlan`, as ``openir seeds plan`` writes it: told by its ``seeds`` key)."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{source}: not valid JSON ({exc})", field="plan") from None
    model: type[BaseModel] = TraineePlanIn if isinstance(obj, dict) and "provenance" not in obj else Plan
    if isinstance(obj, dict) and "seeds" in obj:
        model = SeedPlan
    try:
        parsed = model.model_validate(obj)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"]) or "(file)"
        raise InputError(f"{source}: {loc}: {err['msg']}", field=loc) from None
    return plan_from_needles(parsed) if isinstance(parsed, TraineePlanIn) else parsed


def read_trainee_plan(path: str | Path) -> Plan | SeedPlan:
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror or exc})", source=p) from None
    return parse_trainee_plan(data, str(p))
