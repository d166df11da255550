"""Property-based fuzz of the OpenAPI description (schemathesis strategies driven by hypothesis):
no request, valid or not, makes the API answer with a 5xx. Runs as a machine token of a hospital
quality officer; login/logout are left out so the fuzzer does not lock or end its own access."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

schemathesis = pytest.importorskip("schemathesis")


def test_api_never_answers_5xx(web_app):
    from fastapi.testclient import TestClient

    with TestClient(web_app) as c:
        r = c.post("/api/login", json={"username": "qo-h001", "password": "openir-demo-pass"})
        token = c.post("/api/tokens", json={"name": "fuzz"}, headers={"X-CSRF-Token": r.json()["csrf_token"]}).json()["token"]
    schema = schemathesis.openapi.from_asgi("/openapi.json", web_app)
    auth = {"Authorization": f"Bearer {token}"}
    failures: list[str] = []
    n_ops = 0
    for res in schema.get_all_operations():
        op = res.ok()
        if op.path in ("/api/login", "/api/logout"):
            continue
        n_ops += 1

        @given(case=op.as_strategy())
        @settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
        def run(case):
            resp = case.call(headers=auth)
            if resp.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {resp.status_code}: {resp.text[:200]}")

        run()
    assert n_ops >= 25
    assert not failures, failures[:5]
