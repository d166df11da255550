"""The dose package's coded vocabularies, each spelt once (``Literal`` types: plain text in JSON)."""

from __future__ import annotations

from typing import Literal

Plane = Literal["A", "B", "single"]  # biplane systems report each plane; others "single"
ReportKind = Literal["projection", "ct"]  # RDSR template: TID 10001 (projection X-ray) or TID 10011 (CT)
AlertScope = Literal["procedure", "patient"]  # one study, or a patient's accumulated dose
ReferenceLevelKind = Literal["national", "local"]
Grouping = Literal["room", "operator", "facility"]
