"""CT numbers of the synthetic tissues, read from ``data/tissues.yaml`` (sourced values)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from openir.core.datafiles import load_yaml_model

TISSUES_FILE = Path(__file__).parent / "data" / "tissues.yaml"


class CtTissue(BaseModel):
    """CT appearance of one synthetic tissue (not its thermal properties: see openir.physics.tissues)."""

    model_config = ConfigDict(extra="forbid")
    hu: float = Field(ge=-1024, le=3071)
    texture_hu: float = Field(ge=0, le=200)
    source: str = Field(min_length=3)


class CtTissueTable(BaseModel):
    """The phantom's CT-number table (data/tissues.yaml of this package).

    Named apart from ``openir.physics.tissues.TissueTable``, the thermal property table, which is a
    different file with different fields.
    """

    model_config = ConfigDict(extra="forbid")
    version: int
    tissues: dict[str, CtTissue]


@lru_cache(maxsize=1)
def load_tissues(path: Path = TISSUES_FILE) -> dict[str, CtTissue]:
    """The tissue table; a malformed file raises DataFileError naming the file and field."""
    return load_yaml_model(CtTissueTable, path).tissues


def hu(name: str) -> float:
    return load_tissues()[name].hu


def texture(name: str) -> float:
    return load_tissues()[name].texture_hu
