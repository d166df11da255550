"""Engine, sessions and schema migration.

SQLite in ``$OPENIR_HOME`` by default, PostgreSQL when ``OPENIR_DATABASE_URL`` says so. The
schema is only ever created by running the packaged Alembic migrations (``init_db``), so an
embedded database and a production one are built by the same steps.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from openir.core.errors import InputError
from openir.core.settings import get_settings

MIGRATIONS = Path(__file__).with_name("migrations")


def database_url(url: str | None = None) -> str:
    """``url`` or the configured one (``OPENIR_DATABASE_URL``, else SQLite in ``OPENIR_HOME``)."""
    return url or get_settings().effective_database_url


def make_engine(url: str | None = None, *, schema: str | None = None, echo: bool = False) -> Engine:
    """An engine for ``url``; ``schema`` (PostgreSQL) puts every table in that schema."""
    url = database_url(url)
    try:
        u = make_url(url)
    except Exception as exc:
        raise InputError(f"not a database URL: {url!r} ({exc})", field="database_url") from exc
    kwargs: dict = {"echo": echo, "future": True}
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(u, **kwargs)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # foreign keys are off by default in SQLite
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA mmap_size=1073741824")  # memory-mapped reads: faster indicator scans
            cur.close()

        return engine
    if u.get_backend_name() == "postgresql":
        if u.drivername == "postgresql":  # plain scheme: use psycopg 3, which is installed
            u = u.set(drivername="postgresql+psycopg")
        if schema:
            kwargs["connect_args"] = {"options": f"-csearch_path={schema}"}
        return create_engine(u, **kwargs)
    return create_engine(u, **kwargs)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def init_db(url: str | None = None, *, engine: Engine | None = None) -> Engine:
    """Create or upgrade the registry schema to the newest migration; returns the engine."""
    engine = engine or make_engine(url)
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return engine


def upgrade_component(engine: Engine, script_location: Path, version_table: str,
                      baseline: tuple[str, str] | None = None) -> None:
    """Upgrade another package's own Alembic history (its own version table) to its head.

    ``baseline`` = (revision, table): a database that has ``table`` but no ``version_table`` was made
    before that package had migrations; it is stamped at ``revision`` first. On PostgreSQL an advisory
    lock serialises processes that start together; on SQLite the loser of a creation race retries
    once and finds the tables made.
    """
    from sqlalchemy import inspect, text
    from sqlalchemy.exc import DBAPIError

    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    for attempt in range(2):
        try:
            with engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:n))"), {"n": version_table})
                cfg.attributes["connection"] = conn
                names = set(inspect(conn).get_table_names())
                if baseline and baseline[1] in names and version_table not in names:
                    command.stamp(cfg, baseline[0])
                command.upgrade(cfg, "head")
            return
        except DBAPIError:
            if attempt:
                raise


def schema_revision(engine: Engine) -> str | None:
    """The migration the database is at (None for an empty database)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head() or ""


def session_factory(engine: Engine, actor: str | None = None) -> sessionmaker[Session]:
    """Sessions with the audit hooks on; ``actor`` is recorded as who made each change."""
    from .audit import install_audit

    install_audit()
    who = actor or os.environ.get("OPENIR_ACTOR") or os.environ.get("USER") or "system"
    return sessionmaker(bind=engine, expire_on_commit=False, info={"actor": who})


@contextmanager
def session_scope(engine: Engine, actor: str | None = None) -> Iterator[Session]:
    """One transaction: committed on success, rolled back entirely on any error."""
    session = session_factory(engine, actor)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
