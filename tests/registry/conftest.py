"""Registry fixtures: every DB test runs on SQLite and on PostgreSQL (a fresh schema, dropped after)."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from openir.registry.db import init_db, make_engine


def _sqlite(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("registry") / "registry.db"
    engine = init_db(f"sqlite:///{path}")
    yield engine
    engine.dispose()


def _postgres(url: str):
    schema = f"openir_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine = init_db(engine=make_engine(url, schema=schema))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path_factory):
    """An empty, migrated registry on each backend."""
    if request.param == "sqlite":
        yield from _sqlite(tmp_path_factory)
    else:
        yield from _postgres(request.getfixturevalue("postgres_url"))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def seeded(request, tmp_path_factory):
    """A registry holding one synthetic multi-centre data set (module scope: built once per backend)."""
    from openir.phantom.registry_data import generate_registry
    from openir.registry.bulk import load_dataset

    ds = generate_registry(12_000, 30, seed=3)
    if request.param == "sqlite":
        gen = _sqlite(tmp_path_factory)
    else:
        gen = _postgres(request.getfixturevalue("postgres_url"))
    engine = next(gen)
    load_dataset(engine, ds)
    yield engine, ds
    for _ in gen:
        pass
