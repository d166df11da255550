"""A seeded web application shared by the web tests (SQLite in a temporary folder)."""

from __future__ import annotations

import warnings

import pytest

warnings.filterwarnings("ignore", message=".*httpx.*", category=DeprecationWarning)

PASSWORD = "openir-demo-pass"


@pytest.fixture(scope="session")
def web_app(tmp_path_factory):
    from openir.web import create_app, seed_demo

    home = tmp_path_factory.mktemp("web")
    app = create_app(f"sqlite:///{home / 'openir.db'}", home=home, cache_ttl_s=0.0)
    seed_demo(app.state.ctx, procedures=300, hospitals=4, password=PASSWORD, cases=2, dose_reports=24)
    return app


def login(client, username: str, password: str = PASSWORD) -> str:
    """Log ``client`` in through the API; returns the CSRF token (also set as default header)."""
    r = client.post("/api/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    csrf = r.json()["csrf_token"]
    client.headers["X-CSRF-Token"] = csrf
    return csrf


@pytest.fixture
def login_as():
    return login


@pytest.fixture
def client_for(web_app):
    from fastapi.testclient import TestClient

    made = []

    def make(username: str | None = None):
        c = TestClient(web_app, follow_redirects=False)
        if username:
            login(c, username)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()
