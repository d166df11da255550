"""Check one patient's pre-procedure values against a technique's SOP.

Every check of ``_checks.yaml`` whose conditions hold for the technique and the patient is
evaluated: a value outside a block limit is a block deviation (recorded only with an override
reason), outside a warn limit a warning, and a value the check needs but nobody recorded is a
deviation of its own ("not recorded"), never a silent pass. Unknown patient facts take the stricter
path (an unrecorded sex is checked for pregnancy, an unrecorded arterial access site as femoral).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from openir.core import InputError

from .library import load_checks, load_sop
from .models import SOP, CheckRule, Deviation, PatientValues, SOPCheck

_OPS = {"gt": (lambda x, t: x > t, ">"), "ge": (lambda x, t: x >= t, "≥"),
        "lt": (lambda x, t: x < t, "<"), "le": (lambda x, t: x <= t, "≤")}


def code_under(code: str, stems: list[str]) -> bool:
    """Whether ICD-10 ``code`` lies under one of the ``stems`` (prefix match ignoring the dot)."""
    c = code.replace(".", "").upper()
    return any(c.startswith(s.replace(".", "").upper()) for s in stems)


def technique_context(sop: SOP, values: PatientValues) -> dict[str, Any]:
    """The facts the ``applies`` conditions test: the technique's, then the patient's (unknown = stricter)."""
    contrast = sop.contrast.agent
    if contrast == "optional":
        contrast = "iodinated" if values.iodinated_contrast else "none"
    cp = [c.eq for c in sop.contraindications if c.field == "child_pugh"]
    return {
        "bleeding_risk": sop.bleeding_risk.class_,
        "arterial_access": sop.arterial_access.required,
        "contrast": contrast,
        "radiation": sop.radiation.uses if values.radiation is None else values.radiation,
        "contraindicated_child_pugh": cp[0] if cp else None,
        "sex": values.sex or "F",
        "access_site": values.access_site or "femoral",
        "on_dialysis": bool(values.on_dialysis),
    }


def applies(rule: CheckRule, ctx: dict[str, Any]) -> bool:
    return all(ctx.get(k) == v for k, v in rule.applies.items())


_WORDS = {"any_active": "any recorded", "contains": "contains", "eq": "=",
          "outside_indications": "outside the coded indications", "under_contraindication_codes": "a coded contraindication"}


def _fmt(cond: dict[str, Any]) -> str:
    """A deviation condition as text: ``> 1.8``, ``= pregnant``, ``contains iodinated_contrast``."""
    (op, t), = cond.items()
    if op in _OPS:
        return f"{_OPS[op][1]} {t:g}"
    if op in ("eq", "contains"):
        return f"{_WORDS[op]} {t}"
    if op == "withheld_days_below":
        return "held < " + ", ".join(f"{k} {v:g} d" for k, v in t.items())
    return _WORDS.get(op, op)


def _hit(cond: dict[str, Any] | None, value: Any, sop: SOP) -> bool:
    """Whether ``value`` meets the deviation condition ``cond``."""
    if not cond:
        return False
    (op, t), = cond.items()
    if op in _OPS:
        return bool(_OPS[op][0](float(value), float(t)))
    if op == "eq":
        return bool(value == t)
    if op == "contains":
        return t in value
    if op == "any_active":
        return bool(value) == t
    if op == "outside_indications":
        stems = [c.code for c in sop.indications if c.code]
        return (not code_under(value, stems)) == t
    if op == "under_contraindication_codes":
        stems = [c.code for c in sop.contraindications if c.code]
        return any(code_under(c, stems) for c in value) == t
    raise InputError(f"unknown condition {op!r} in sop/data/_checks.yaml")


def _shown(rule: CheckRule, values: PatientValues) -> str | float | None:
    v = getattr(values, rule.item)
    if rule.item == "antithrombotics" and v:
        return "; ".join(f"{a.name} ({a.kind}, last dose {a.last_dose.isoformat(' ', 'minutes') if a.last_dose else 'not recorded'})"
                         for a in v)
    if isinstance(v, list):
        return "; ".join(v)
    return v


# generic and common Chinese/brand names of the anticoagulants with a withholding interval (names, not numbers)
AGENT_NAMES = {"apixaban": "apixaban", "阿哌沙班": "apixaban", "eliquis": "apixaban", "艾乐妥": "apixaban",
               "rivaroxaban": "rivaroxaban", "利伐沙班": "rivaroxaban", "xarelto": "rivaroxaban", "拜瑞妥": "rivaroxaban",
               "edoxaban": "edoxaban", "依度沙班": "edoxaban", "lixiana": "edoxaban", "savaysa": "edoxaban",
               "dabigatran": "dabigatran", "达比加群": "dabigatran", "达比加群酯": "dabigatran", "pradaxa": "dabigatran",
               "泰毕全": "dabigatran", "warfarin": "warfarin", "华法林": "warfarin", "coumadin": "warfarin"}


def withholding(agents: list[Any], holds: dict[str, float], procedure_at: dt.datetime | None) -> tuple[list[str], list[str]]:
    """(agents held too briefly, agents whose interval cannot be computed) before ``procedure_at``.

    A hold of d days is >= 24 d + 12 h between the last dose and the procedure (see _checks.yaml)."""
    short, unknown = [], []
    for a in agents:
        generic = AGENT_NAMES.get(a.name.strip().lower())
        if generic is None or generic not in holds:
            continue
        if a.last_dose is None or procedure_at is None:
            unknown.append(f"{a.name} (last dose or procedure time not recorded)")
            continue
        hours = (procedure_at - a.last_dose).total_seconds() / 3600
        need = 24 * holds[generic] + 12
        if hours < need:
            short.append(f"{a.name}: {hours:.0f} h since the last dose, {need:.0f} h needed ({holds[generic]:g} d)")
    return short, unknown


def _withholding(rule: CheckRule, values: PatientValues) -> Deviation | None:
    short, unknown = withholding(values.antithrombotics or [], rule.block["withheld_days_below"],  # type: ignore[index]
                                 values.procedure_at)
    if not short and not unknown:
        return None
    sev = "block" if short else "warn"
    shown = "; ".join(short or unknown)
    return Deviation(check=rule.id, item=rule.item, value=shown, threshold="withheld long enough", severity=sev,  # type: ignore[arg-type]
                     kind="threshold" if short else "missing", source=rule.source,
                     message_en=f"{rule.en}: {shown}" if short else f"withholding interval cannot be checked: {shown}",
                     message_zh=f"{rule.zh}：{shown}" if short else f"无法核对停药间隔：{shown}")


def evaluate(rule: CheckRule, sop: SOP, values: PatientValues) -> Deviation | None:
    """The deviation ``rule`` raises for ``values`` (None when within the SOP)."""
    if rule.block and "withheld_days_below" in rule.block:
        return _withholding(rule, values)
    value = getattr(values, rule.item)
    unit = f" {rule.unit}" if rule.unit not in ("", "1") else ""
    if value is None:
        if rule.missing is None:
            return None
        return Deviation(check=rule.id, item=rule.item, value=None, threshold="recorded", severity=rule.missing,
                         kind="missing", source=rule.source, message_en=f"{rule.item} not recorded ({rule.en})",
                         message_zh=f"{rule.item} 未记录（{rule.zh}）")
    for severity in ("block", "warn"):
        cond = getattr(rule, severity)
        if _hit(cond, value, sop):
            shown = _shown(rule, values)
            thr = _fmt(cond) + unit
            return Deviation(check=rule.id, item=rule.item, value=shown, threshold=thr, severity=severity,  # type: ignore[arg-type]
                             kind="threshold", source=rule.source,
                             message_en=f"{rule.en}: {rule.item} = {shown}{unit} ({thr})",
                             message_zh=f"{rule.zh}：{rule.item} = {shown}{unit}（{thr}）")
    return None


def as_values(values: PatientValues | dict[str, Any]) -> PatientValues:
    """``values`` as PatientValues; a dict is validated (errors name the field)."""
    if isinstance(values, PatientValues):
        return values
    from pydantic import ValidationError

    try:
        return PatientValues.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or None
        raise InputError(err["msg"].removeprefix("Value error, "), field=field) from None


def check_patient(technique: str, values: PatientValues | dict[str, Any]) -> SOPCheck:
    """Check ``values`` (PatientValues or a plain dict of them) against the SOP of ``technique``.

    >>> r = check_patient("liver_mwa", {"inr": 1.2, "platelets": "40000 /uL", "sex": "M", "antithrombotics": [],
    ...                                 "child_pugh": "A", "diagnosis_code": "C22.0", "conditions": []})
    >>> [(d.check, d.severity) for d in r.deviations]
    [('platelets_high_risk', 'block')]
    """
    sop = load_sop(technique)
    pv = as_values(values)
    ctx = technique_context(sop, pv)
    devs = [d for rule in load_checks().checks if applies(rule, ctx) and (d := evaluate(rule, sop, pv)) is not None]
    return SOPCheck(technique=sop.technique, sop_version=sop.version, values=pv, deviations=devs,
                    checked_at=dt.datetime.now(dt.UTC).replace(microsecond=0))
