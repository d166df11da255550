"""Run-time settings, read from the environment once.

Defaults give the embedded single-machine set-up (SQLite file, local processes); production sets
``OPENIR_DATABASE_URL`` (PostgreSQL), ``OPENIR_DASK_SCHEDULER``, ``OPENIR_STORAGE`` (a folder every
process sees: originals, quarantine, case images), ``OPENIR_SECRET_FILE`` or ``OPENIR_SECRET_KEY``
(the pseudonym key, the same in every process and after restarts) and ``OPENIR_ENV=production``
(refuse to start without a configured key instead of creating one).
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

from pydantic import BaseModel, Field


def _default_home() -> Path:
    return Path(os.environ.get("OPENIR_HOME", Path.home() / ".openir"))


class Settings(BaseModel):
    home: Path = Field(default_factory=_default_home, description="where embedded data lives")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; None = SQLite in home")
    dask_scheduler: str | None = Field(default=None, description="Dask scheduler address; None = local")
    require_all: bool = Field(default=False, description="tests must not skip for missing data/services")
    storage: Path | None = Field(default=None, description="shared storage root; None = home")
    secret_key: str | None = Field(default=None, description="pseudonym key (hex, >= 32 bytes); wins over the file")
    secret_file: Path | None = Field(default=None, description="file holding the key; None = home/secret.key")
    production: bool = Field(default=False, description="no key is ever created: a missing key is an error")

    @property
    def storage_root(self) -> Path:
        """Where stored files live (originals, quarantine, case images): shared by every process."""
        return self.storage or self.home

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
        storage=Path(env["OPENIR_STORAGE"]) if env.get("OPENIR_STORAGE") else None,
        secret_key=env.get("OPENIR_SECRET_KEY") or None,
        secret_file=Path(env["OPENIR_SECRET_FILE"]) if env.get("OPENIR_SECRET_FILE") else None,
        production=env.get("OPENIR_ENV", "").lower() == "production",
    )


def load_secret(settings: Settings | None = None) -> bytes:
    """The installation's pseudonym key: the same bytes in every process and after every restart.

    ``OPENIR_SECRET_KEY`` (hex) wins; else the key file (``OPENIR_SECRET_FILE``, default
    ``home/secret.key``). Outside production a missing file is created once, atomically (two
    processes starting together read the same key); in production a missing key is an error,
    because a new key would silently break the linkage of every stored pseudonym.
    """
    from .errors import InputError

    st = settings or get_settings()
    if st.secret_key:
        try:
            key = bytes.fromhex(st.secret_key.strip())
        except ValueError:
            raise InputError("OPENIR_SECRET_KEY must be hexadecimal (e.g. `openssl rand -hex 32`)") from None
        if len(key) < 32:
            raise InputError("OPENIR_SECRET_KEY is too short: give at least 32 bytes (64 hex digits)")
        return key
    path = st.secret_file or st.home / "secret.key"
    if not path.exists():
        if st.production:
            raise InputError("no pseudonym key: set OPENIR_SECRET_KEY or OPENIR_SECRET_FILE (production mode "
                             "never creates one; create it once with `openssl rand -hex 32`)", source=path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first: read theirs
        else:
            tmp_key = secrets.token_hex(32)
            with os.fdopen(fd, "w") as fh:
                fh.write(tmp_key + "\n")
                fh.flush()
                os.fsync(fh.fileno())
    for _ in range(50):  # a file created this instant may still be empty
        text = path.read_text(encoding="ascii", errors="replace").strip()
        if text:
            break
        time.sleep(0.02)
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise InputError("the pseudonym key file is not hexadecimal", source=path) from None
    if len(key) < 32:
        raise InputError("the pseudonym key file holds fewer than 32 bytes", source=path)
    return key
