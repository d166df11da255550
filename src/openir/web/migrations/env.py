"""Alembic environment of the web's own tables (version table ``alembic_version_web``), run on the
connection that ``openir.web.models.create_web_tables`` hands over."""

from __future__ import annotations

from alembic import context

from openir.web.models import WebBase

VERSION_TABLE = "alembic_version_web"


def _only_web(name, type_, *_args) -> bool:
    return type_ != "table" or name in WebBase.metadata.tables


connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=WebBase.metadata, render_as_batch=True,
                  version_table=VERSION_TABLE, include_name=_only_web)
with context.begin_transaction():
    context.run_migrations()
