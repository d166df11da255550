"""Standard codes: ICD-10 diagnoses with Chinese and English names (``data/diagnoses.yaml``).

Hospitals write a diagnosis as a code (``C22.0``, or a longer national clinical-edition code), as a
Chinese name (肝细胞癌, 原发性肝癌) or as English text. :func:`resolve_diagnosis` turns any of these into
one ICD-10 code, so technique indications are checked by code (prefix match on the ICD-10 stem) and
never by comparing text in one language with text in another.

Example::

    >>> from openir.registry.codes import resolve_diagnosis
    >>> resolve_diagnosis("肝细胞癌").code, resolve_diagnosis("C22.0").zh
    ('C22.0', '肝细胞癌')
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field

from openir.core.datafiles import load_packaged
from openir.core.errors import DataFileError

ICD10_SYSTEM = "http://hl7.org/fhir/sid/icd-10"
ICD9CM_SYSTEM = "http://hl7.org/fhir/sid/icd-9-cm"
# an ICD-10 code, optionally extended by a national edition (e.g. C22.0, C22.000, C22.000x001)
CODE_RE = re.compile(r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,4}([xX][0-9]{1,4})?)?$")


class Diagnosis(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    code: str = Field(pattern=r"^[A-Z][0-9]{2}(\.[0-9]{1,2})?$")
    en: str
    zh: str
    name_zh_source: str = Field(min_length=3)  # where the Chinese title was checked, or NOT CHECKED: why
    synonyms: list[str] = []


class DiagnosisFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int
    source: str
    national_note: str
    diagnoses: list[Diagnosis]


def normalise(text: str) -> str:
    """Fold width (全角 -> half width), case, spaces and punctuation so that spellings compare."""
    t = unicodedata.normalize("NFKC", text).casefold()
    return re.sub(r"[\s\-_,.;:()（）【】\[\]'\"“”、，。；：]+", "", t)


class DiagnosisIndex:
    """Lookup of diagnoses by code and by any of their names."""

    def __init__(self, f: DiagnosisFile):
        self.by_code: dict[str, Diagnosis] = {}
        self.by_name: dict[str, Diagnosis] = {}
        for d in f.diagnoses:
            if d.code in self.by_code:
                raise DataFileError(f"diagnoses.yaml: code {d.code} appears twice")
            self.by_code[d.code] = d
            for name in (d.en, d.zh, *d.synonyms):
                key = normalise(name)
                other = self.by_name.get(key)
                if other is not None and other.code != d.code:
                    raise DataFileError(f"diagnoses.yaml: name {name!r} means both {other.code} and {d.code}")
                self.by_name[key] = d
        self.source = f.source

    def lookup_code(self, code: str) -> Diagnosis | None:
        """The listed diagnosis whose code is ``code`` or its longest listed stem (C22.000 -> C22.0)."""
        c = code.strip().upper()
        while c:
            if c in self.by_code:
                return self.by_code[c]
            c = c[:-1].rstrip(".")
            if len(c) < 3:
                return None
        return None


@lru_cache(maxsize=1)
def diagnosis_index() -> DiagnosisIndex:
    return DiagnosisIndex(load_packaged(DiagnosisFile, "openir.registry", "data/diagnoses.yaml"))


def is_code(text: str) -> bool:
    return bool(CODE_RE.match(unicodedata.normalize("NFKC", text).strip().upper()))


class Resolved(BaseModel):
    """A diagnosis as resolved: the code to store and its names (names None for unlisted codes)."""

    model_config = ConfigDict(frozen=True)
    code: str
    en: str | None = None
    zh: str | None = None


@lru_cache(maxsize=4096)
def resolve_diagnosis(text: str | None) -> Resolved | None:
    """ICD-10 code and names for a code or a name in Chinese or English; None when not recognised.

    A well-formed code is accepted even when it is not in the packaged subset (names then None).
    """
    if text is None or not str(text).strip():
        return None
    raw = unicodedata.normalize("NFKC", str(text)).strip()
    idx = diagnosis_index()
    if is_code(raw):
        code = raw.upper()
        d = idx.lookup_code(code)
        return Resolved(code=code, en=d.en if d else None, zh=d.zh if d else None)
    d = idx.by_name.get(normalise(raw))
    return None if d is None else Resolved(code=d.code, en=d.en, zh=d.zh)


def code_matches(code: str, prefixes: list[str]) -> bool:
    """True when ``code`` lies under one of the ICD-10 ``prefixes`` (``C22.0`` under ``C22``, ``C``)."""
    c = code.upper()
    return any(c.startswith(p.upper()) for p in prefixes)
