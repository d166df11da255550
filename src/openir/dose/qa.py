r"""Quality-assurance and phantom studies: recognised by patterns, kept out of reference levels.

A QA or phantom exposure is real radiation and is stored like any report, but it is not a patient
and ICRP 135 reference levels are built on patient exposures only. Rules (regular expressions per
field) live in ``data/qa_rules.yaml``; a site passes its own file, and single studies can be
overridden in the store (``DoseStore.mark_qa``).

>>> from openir.dose.models import DoseReport
>>> r = DoseReport(kind="projection", template="10001", sop_instance_uid="1.2", sop_class_uid="1.2",
...                procedure="Annual QA dose rate check")
>>> print(qa_reason(r))
procedure 'Annual QA dose rate check' matches '\\bQA\\b'
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path

from pydantic import BaseModel, field_validator

from openir.core.datafiles import load_packaged, load_yaml_model

from .models import DoseReport

FIELDS = ("procedure", "patient_name", "patient_id", "protocol")


class QARules(BaseModel):
    version: int = 1
    source: str = ""
    fields: dict[str, list[str]]

    @field_validator("fields")
    @classmethod
    def _known_and_compiling(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, pats in v.items():
            if name not in FIELDS:
                raise ValueError(f"unknown field {name!r}; known: {', '.join(FIELDS)}")
            for p in pats:
                try:
                    re.compile(p)
                except re.error as exc:
                    raise ValueError(f"pattern {p!r} of {name} is not a regular expression: {exc}") from None
        return v

    @cached_property
    def compiled(self) -> dict[str, list[re.Pattern[str]]]:
        return {k: [re.compile(p, re.IGNORECASE) for p in pats] for k, pats in self.fields.items()}


def load_qa_rules(path: str | Path | None = None) -> QARules:
    """The packaged QA patterns, or a site's own file."""
    if path:
        return load_yaml_model(QARules, path)
    return load_packaged(QARules, "openir.dose", "data/qa_rules.yaml")


def _values(report: DoseReport, field: str) -> list[str]:
    if field == "protocol":
        vals = [e.protocol for e in report.events] + [a.protocol for a in report.ct_acquisitions]
    else:
        vals = [getattr(report, field, None)]
    return [v for v in dict.fromkeys(vals) if v]


def qa_reason(report: DoseReport, rules: QARules | None = None) -> str | None:
    """Why ``report`` looks like a QA/phantom study (the field, its value and the pattern), or None."""
    rules = rules or load_qa_rules()
    for field, pats in rules.compiled.items():
        for value in _values(report, field):
            for p in pats:
                if p.search(value):
                    return f"{field} {value!r} matches {p.pattern!r}"
    return None
