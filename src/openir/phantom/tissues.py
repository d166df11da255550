"""CT numbers of the synthetic tissues, read from ``data/tissues.yaml`` (sourced values)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from openir.core.errors import DataFileError

TISSUES_FILE = Path(__file__).parent / "data" / "tissues.yaml"


class Tissue(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hu: float = Field(ge=-1024, le=3071)
    texture_hu: float = Field(ge=0, le=200)
    source: str = Field(min_length=3)


class TissueTable(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int
    tissues: dict[str, Tissue]


@lru_cache(maxsize=1)
def load_tissues(path: Path = TISSUES_FILE) -> dict[str, Tissue]:
    """The tissue table; a malformed file raises DataFileError naming the file and field."""
    try:
        raw = yaml.safe_load(Path(path).read_text())
        return TissueTable.model_validate(raw).tissues
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise DataFileError(f"{path} [{field}]: {err['msg']}") from exc
    except (OSError, yaml.YAMLError) as exc:
        raise DataFileError(f"{path}: cannot read tissue table ({exc})") from exc


def hu(name: str) -> float:
    return load_tissues()[name].hu


def texture(name: str) -> float:
    return load_tissues()[name].texture_hu
