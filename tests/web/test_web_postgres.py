"""The application on PostgreSQL, in a fresh schema dropped afterwards (others share the database)."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa


@pytest.fixture(scope="module")
def pg_app(postgres_url, tmp_path_factory):
    from openir.web import create_app, seed_demo

    schema = f"web_{uuid.uuid4().hex[:10]}"
    eng = sa.create_engine(postgres_url)
    with eng.begin() as c:
        c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    app = None
    try:
        url = postgres_url + ("&" if "?" in postgres_url else "?") + f"options=-csearch_path%3D{schema}"
        app = create_app(url, home=tmp_path_factory.mktemp("webpg"), cache_ttl_s=0.0)
        seed_demo(app.state.ctx, procedures=120, hospitals=3, cases=1, dose_reports=6)
        yield app
    finally:
        if app is not None:
            app.state.ctx.engine.dispose()
            if app.state.ctx._dose is not None:
                app.state.ctx._dose.engine.dispose()
        with eng.begin() as c:
            c.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        eng.dispose()


def test_postgres_pages_and_isolation(pg_app):
    from fastapi.testclient import TestClient

    with TestClient(pg_app) as c:
        r = c.post("/api/login", json={"username": "qo-h001", "password": "openir-demo-pass"})
        assert r.status_code == 200
        c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        items = c.get("/api/procedures?limit=500").json()["items"]
        assert items and {i["hospital_code"] for i in items} == {"H001"}
        for path in ("/procedures", "/quality", "/dose", "/api/quality/indicators", "/api/dose/alerts"):
            assert c.get(path).status_code == 200, path
        body = {"uid": "PG-1", "patient_key": "PK-PG-1", "hospital_code": "H001", "operator_code": "H001-OP01",
                "date": "2024-02-02", "technique": "tace"}
        assert c.post("/api/procedures", json=body).status_code == 201
    with pg_app.state.ctx.engine.connect() as conn:
        assert conn.scalar(sa.text("select current_schema()")).startswith("web_")
