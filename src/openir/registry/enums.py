"""The registry's coded vocabularies, each spelt once: schemas, the catalogue, grading and the web use these.

Each is a ``Literal`` (so pydantic validates it and the JSON stays plain text) with its values as a tuple
for menus and messages.
"""

from __future__ import annotations

from typing import Literal, get_args

HospitalLevel = Literal["tertiary", "secondary", "county"]
Credential = Literal["junior", "intermediate", "senior"]
Tier = Literal["basic", "intermediate", "complex"]
Therapy = Literal["none", "nominal", "additional", "major"]
Sequelae = Literal["none", "mild", "severe"]
Response = Literal["CR", "PR", "SD", "PD"]  # mRECIST / EASL
Anaesthesia = Literal["local", "sedation", "general", "none"]
Sex = Literal["M", "F", "O"]
ChildPugh = Literal["A", "B", "C"]
Period = Literal["all", "year", "quarter"]
Direction = Literal["higher_better", "lower_better"]
Grade = Literal["A", "B", "C"]

LEVELS: tuple[str, ...] = get_args(HospitalLevel)
CREDENTIALS: tuple[str, ...] = get_args(Credential)
TIERS: tuple[str, ...] = get_args(Tier)
