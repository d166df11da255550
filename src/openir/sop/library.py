"""The SOP library: one YAML file per catalogued technique plus the shared pre-procedure checks."""

from __future__ import annotations

import functools
from importlib import resources

from openir.core import InputError, load_packaged

from .models import SOP, CheckTable

PACKAGE = "openir.sop"


@functools.cache
def technique_ids() -> tuple[str, ...]:
    """Technique codes with an SOP file (``data/<technique>.yaml``), sorted."""
    files = resources.files(PACKAGE).joinpath("data").iterdir()
    return tuple(sorted(f.name[:-5] for f in files if f.name.endswith(".yaml") and not f.name.startswith("_")))


def load_sop(technique: str) -> SOP:
    """The SOP of ``technique``; an unknown technique raises InputError listing the known ones."""
    code = (technique or "").strip()
    if code not in technique_ids():
        raise InputError(f"no SOP for technique {technique!r}; known: {', '.join(technique_ids())}", field="technique")
    sop = load_packaged(SOP, PACKAGE, f"data/{code}.yaml")
    if sop.technique != code:
        raise InputError(f"data/{code}.yaml names technique {sop.technique!r}", source=f"{PACKAGE}/data/{code}.yaml",
                         field="technique")
    return sop


def load_checks() -> CheckTable:
    """The shared pre-procedure checks (``data/_checks.yaml``)."""
    return load_packaged(CheckTable, PACKAGE, "data/_checks.yaml")
