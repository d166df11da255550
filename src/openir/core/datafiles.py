"""Loading the YAML data files that experts edit (device tables, tissue properties, thresholds...).

Every package validates its data file with a pydantic model; this is the one place that turns a
read, parse or validation failure into a `DataFileError` naming the file and the field, so a
clinician editing a table sees ``devices.yaml [devices.3.zones.1.length_mm]: ...``, not a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import DataFileError

M = TypeVar("M", bound=BaseModel)


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file; unreadable or malformed files raise DataFileError naming the file."""
    p = Path(path)
    try:
        return yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataFileError(f"{p}: cannot read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise DataFileError(f"{p}: not valid YAML ({exc})") from None


def validate_data(model: type[M], data: Any, source: str | Path) -> M:
    """Validate parsed data against ``model``; the first problem is reported as ``source [field]: msg``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        more = f" (+{exc.error_count() - 1} more problem(s))" if exc.error_count() > 1 else ""
        raise DataFileError(f"{source} [{field}]: {err['msg']}{more}") from None


def load_yaml_model(model: type[M], path: str | Path) -> M:
    """Read ``path`` and validate it as ``model``."""
    return validate_data(model, read_yaml(path), path)


class Sourced(BaseModel):
    """A clinical or physical number with the publication (or stated modelling choice) it comes from."""

    model_config = ConfigDict(extra="forbid")
    value: float
    source: str = Field(min_length=3)
