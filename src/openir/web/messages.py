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
