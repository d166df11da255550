"""CT numbers of the synthetic tissues, read from ``data/tissues.yaml`` (sourced values).

These are CT appearance values (HU and texture) for the phantom only; thermal and electrical
tissue properties are `openir.physics`' ``TissueTable``, a different table.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from openir.core.datafiles import load_packaged


class CtNumber(BaseModel):
    """How one tissue looks on CT: mean HU, SD of its texture (HU) and where the numbers come from."""

    model_config = ConfigDict(extra="forbid")
    hu: float = Field(ge=-1024, le=3071)
    texture_hu: float = Field(ge=0, le=200)
    source: str = Field(min_length=3)


class CtNumberTable(BaseModel):
    """The phantom's ``data/tissues.yaml``: tissue name -> `CtNumber`."""

    model_config = ConfigDict(extra="forbid")
    version: int
    tissues: dict[str, CtNumber]


def load_tissues() -> dict[str, CtNumber]:
    """The tissue table (read once); a malformed file raises DataFileError naming the file and field.

    >>> load_tissues()["bone_cortical"].hu > load_tissues()["liver"].hu > load_tissues()["fat"].hu
    True
    """
    return load_packaged(CtNumberTable, "openir.phantom", "data/tissues.yaml").tissues


def hu(name: str) -> float:
    return load_tissues()[name].hu


def texture(name: str) -> float:
    return load_tissues()[name].texture_hu
