"""Loading the YAML data files that experts edit (device tables, tissue properties, thresholds...).

Every package validates its data file with a pydantic model; this is the one place that turns a
read, parse or validation failure into a `DataFileError` naming the file and the field, so a
clinician editing a table sees ``devices.yaml [devices.3.zones.1.length_mm]: ...``, not a traceback.
`load_packaged` is the one loader (with its cache) for the tables shipped inside a package.
"""

from __future__ import annotations

import functools
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, TypeVar, cast

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import DataFileError

M = TypeVar("M", bound=BaseModel)


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file; unreadable or malformed files raise DataFileError naming the file."""
    return _parse(Path(path), Path(path))


def _parse(file: Path | Traversable, source: object) -> Any:
    try:
        return yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataFileError(f"{source}: cannot read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise DataFileError(f"{source}: not valid YAML ({exc})") from None


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


def load_packaged(model: type[M], package: str, filename: str) -> M:
    """The YAML file ``filename`` shipped inside ``package``, validated as ``model``, read once.

    Later calls with the same (model, package, filename) return the same object, so treat it as
    read-only; `clear_packaged_cache` forgets every table (tests that edit a file call it).
    A missing, malformed or invalid file raises DataFileError naming the file (and the field).

    >>> from pydantic import BaseModel
    >>> class Table(BaseModel):
    ...     version: int
    ...     tissues: dict
    >>> t = load_packaged(Table, "openir.phantom", "data/tissues.yaml")
    >>> t.tissues["liver"]["hu"] > 0, t is load_packaged(Table, "openir.phantom", "data/tissues.yaml")
    (True, True)
    """
    return cast(M, _load_packaged(model, package, filename))


@functools.cache
def _load_packaged(model: type[BaseModel], package: str, filename: str) -> BaseModel:
    file = resources.files(package).joinpath(*filename.split("/"))
    source = Path(str(file)) if isinstance(file, Path) else f"{package}/{filename}"
    return validate_data(model, _parse(file, source), source)


def clear_packaged_cache() -> None:
    """Forget every table `load_packaged` has read; the next call reads the file again."""
    _load_packaged.cache_clear()


class Sourced(BaseModel):
    """A clinical or physical number with the publication (or stated modelling choice) it comes from."""

    model_config = ConfigDict(extra="forbid")
    value: float
    source: str = Field(min_length=3)
