"""The web tables have their own Alembic history: a fresh database, an old `create_all` database with
data, and the models all agree."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from openir.web.models import LoginFailure, RecordLock, SharedState, WebBase, create_web_tables


def _diff(engine):
    with engine.connect() as conn:
        mc = MigrationContext.configure(conn, opts={"include_name": lambda n, t, *_: t != "table" or n in WebBase.metadata.tables})
        return [d for d in compare_metadata(mc, WebBase.metadata)]


def test_fresh_database_equals_the_models(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    create_web_tables(engine)
    create_web_tables(engine)  # idempotent
    assert _diff(engine) == []
    with engine.connect() as conn:
        assert conn.execute(sa.text("select version_num from alembic_version_web")).scalar() == "web_0003"


def test_an_old_create_all_database_is_upgraded_with_its_data(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    old = [t for name, t in WebBase.metadata.tables.items()
           if name not in (LoginFailure.__tablename__, SharedState.__tablename__, RecordLock.__tablename__)]
    WebBase.metadata.create_all(engine, tables=old)  # as `create_all` made it before migrations
    with engine.begin() as conn:
        conn.execute(sa.text("insert into web_users (username, password_hash, role, lang, active, created_at) "
                             "values ('kept', 'x', 'admin', 'en', 1, '2026-01-01')"))
    create_web_tables(engine)
    assert _diff(engine) == []
    with engine.connect() as conn:
        assert conn.execute(sa.text("select username from web_users")).scalar() == "kept"
        assert "web_login_failures" in sa.inspect(conn).get_table_names()
