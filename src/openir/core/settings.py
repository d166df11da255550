"""Run-time settings, read from the environment once.

Defaults give the embedded single-machine set-up (SQLite file, local processes); production sets
``OPENIR_DATABASE_URL`` (PostgreSQL) and ``OPENIR_DASK_SCHEDULER``.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, Field


def _default_home() -> Path:
    return Path(os.environ.get("OPENIR_HOME", Path.home() / ".openir"))


class Settings(BaseModel):
    home: Path = Field(default_factory=_default_home, description="where embedded data lives")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; None = SQLite in home")
    dask_scheduler: str | None = Field(default=None, description="Dask scheduler address; None = local")
    require_all: bool = Field(default=False, description="tests must not skip for missing data/services")

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'openir.db'}"


def get_settings() -> Settings:
    """Settings from ``OPENIR_*`` environment variables."""
    env = os.environ
    return Settings(
        home=_default_home(),
        database_url=env.get("OPENIR_DATABASE_URL") or None,
        dask_scheduler=env.get("OPENIR_DASK_SCHEDULER") or None,
        require_all=env.get("OPENIR_REQUIRE_ALL", "") not in ("", "0", "false", "False"),
    )
