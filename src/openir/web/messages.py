"""Messages built from data, in the reader's language: dose alerts from their fields, notifications
stored as a key with arguments, hospital rating reasons, indicator titles.

Domain packages return English text for logs and reports; the web shows the same facts through the
message catalogues, so a zh-CN reader never meets an English sentence.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

Translate = Callable[[str], str]


def note_payload(key: str, **args: Any) -> str:
    """What a notification stores: a catalogue key and its arguments (rendered per reader)."""
    return json.dumps({"k": key, "a": args}, ensure_ascii=False)


def note_text(t: Translate, stored: str) -> str:
    """A stored notification in the reader's language (older plain-text rows are shown as they are)."""
    try:
        data = json.loads(stored)
        args = {k: (t(v[1:]) if isinstance(v, str) and v.startswith("@") else v) for k, v in data["a"].items()}
        return t(data["k"]).format(**args)
    except (ValueError, KeyError, TypeError, AttributeError):
        return stored


def alert_text(t: Translate, metric: str, scope: str, value: float, threshold: float, unit: str = "") -> str:
    """A dose alert from its fields: metric, value, threshold, procedure or time window."""
    minutes = metric == "fluoro_time_s"
    shown = f"{value / 60:.1f} min" if minutes else f"{value:.3g} {unit}".strip()
    limit = f"{threshold / 60:.0f} min" if minutes else f"{threshold:g} {unit}".strip()
    return t("alert_msg").format(metric=t(f"metric_{metric}"), value=shown, limit=limit, where=t(f"where_{scope}"))


_REASONS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^meets every requirement of grade A$"), "reason_meets_a"),
    (re.compile(r"^not (?P<g>\w+): missing equipment for a (?P<level>[\w-]+) hospital: (?P<items>.+)$"), "reason_equipment"),
    (re.compile(r"^not (?P<g>\w+): (?P<n>[\d.]+) procedures/year < (?P<m>[\d.]+) required for a (?P<level>[\w-]+) hospital$"),
     "reason_volume"),
    (re.compile(r"^not (?P<g>\w+): funnel alarm \(beyond 99\.8% limit\) on (?P<items>.+)$"), "reason_alarm"),
    (re.compile(r"^not (?P<g>\w+): (?P<n>\d+) funnel alerts \(beyond 95%\) > (?P<m>\d+): (?P<items>.+)$"), "reason_alerts"),
    (re.compile(r"^not (?P<g>\w+): data completeness (?P<x>\S+) < (?P<y>\S+)$"), "reason_completeness"),
]


def reason_text(t: Translate, reason: str) -> str:
    """A hospital rating reason (as ``registry.rate_hospitals`` words it) in the reader's language."""
    for pattern, key in _REASONS:
        m = pattern.match(reason)
        if m:
            args = m.groupdict()
            if "items" in args:
                args["items"] = ", ".join(t(f"ind_{x.strip()}") if t(f"ind_{x.strip()}") != f"ind_{x.strip()}"
                                          else x.strip() for x in args["items"].split(","))
            if "level" in args:
                args["level"] = t(f"level_{args['level']}")
            return t(key).format(**args)
    return reason


def indicator_title(t: Translate, code: str, fallback: str) -> str:
    """An indicator's title in the reader's language (the YAML title when the catalogue has none)."""
    key = f"ind_{code}"
    text = t(key)
    return fallback if text == key else text


# pydantic error types -> catalogue keys (with the error's ``ctx`` as arguments)
_VALIDATION = {
    "missing": "v_missing", "greater_than": "v_greater_than", "greater_than_equal": "v_greater_than_equal",
    "less_than": "v_less_than", "less_than_equal": "v_less_than_equal", "string_too_short": "v_string_too_short",
    "string_too_long": "v_string_too_long", "int_parsing": "v_number", "float_parsing": "v_number",
    "int_from_float": "v_whole_number", "date_from_datetime_parsing": "v_date", "date_parsing": "v_date",
    "literal_error": "v_one_of", "enum": "v_one_of", "bool_parsing": "v_bool", "string_pattern_mismatch": "v_pattern",
    "extra_forbidden": "v_extra",
}


def validation_text(t: Translate, error: dict) -> str:
    """One request-validation error (pydantic's dict) as a message in the reader's language; a
    message of our own validators (``value_error``) is looked up by its text, else kept."""
    key = _VALIDATION.get(str(error.get("type")))
    if key is None:
        msg = str(error.get("msg", ""))
        own = "v_" + re.sub(r"[^a-z0-9]+", "_", msg.lower().removeprefix("value error, ")).strip("_")
        return t(own) if t(own) != own else msg
    ctx = {k: (int(v) if isinstance(v, float) and v.is_integer() else v) for k, v in (error.get("ctx") or {}).items()}
    try:
        return t(key).format(**ctx)
    except (KeyError, IndexError):
        return str(error.get("msg", ""))


_INPUT_ERRORS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^procedure '(?P<x>[^']*)' is already recorded$"), "e_already_recorded"),
    (re.compile(r"^unknown hospital '(?P<x>[^']*)'$"), "e_unknown_hospital"),
    (re.compile(r"^unknown operator '(?P<x>[^']*)'$"), "e_unknown_operator"),
    (re.compile(r"^unknown assistant operator '(?P<x>[^']*)'$"), "e_unknown_operator"),
    (re.compile(r"^operator '(?P<x>[^']*)' does not belong to hospital '(?P<y>[^']*)'$"), "e_operator_elsewhere"),
    (re.compile(r"^hospital '(?P<y>[^']*)' has no room '(?P<x>[^']*)'$"), "e_no_room"),
]


def input_error_text(t: Translate, message: str) -> str:
    """A registry refusal (``InputError`` text) in the reader's language; unknown ones stay as they are."""
    for pattern, key in _INPUT_ERRORS:
        m = pattern.match(message)
        if m:
            return t(key).format(**m.groupdict())
    return message
