"""Alembic environment of the dose store's tables (version table ``alembic_version_dose``), run on the
connection that ``openir.dose.store.DoseStore`` hands over."""

from __future__ import annotations

from alembic import context

from openir.dose.store import Base

VERSION_TABLE = "alembic_version_dose"


def _only_dose(name, type_, *_args) -> bool:
    return type_ != "table" or name in Base.metadata.tables


connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True,
                  version_table=VERSION_TABLE, include_name=_only_dose)
with context.begin_transaction():
    context.run_migrations()
