"""Shared fixtures. Tests needing ../shared/data or PostgreSQL skip with a reason, unless
OPENIR_REQUIRE_ALL=1 (as in CI), where a missing resource fails the test instead."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from openir.testing import need

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real test files in ../shared/data (or $OPENIR_SHARED_DATA)."""
    path = Path(os.environ.get("OPENIR_SHARED_DATA", ROOT.parent / "shared" / "data"))
    need(path.is_dir(), f"real test data not found at {path} (set OPENIR_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of a PostgreSQL database for tests ($OPENIR_TEST_POSTGRES_URL, default local `test`)."""
    url = os.environ.get("OPENIR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    try:
        import sqlalchemy as sa

        engine = sa.create_engine(url)
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
    except Exception as exc:  # any failure to connect means: not available
        need(False, f"PostgreSQL not reachable at {url}: {exc.__class__.__name__}")
    return url
