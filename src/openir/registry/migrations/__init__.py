"""Alembic migrations of the registry schema, run programmatically by ``db.init_db``."""
