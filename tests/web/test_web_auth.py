"""Accounts: Argon2 hashes, sessions with CSRF, login rate limit, roles, API tokens, audit."""

from __future__ import annotations

import sqlalchemy as sa

from openir.registry import load_catalogue
from openir.registry.models import AuditLog
from openir.web import hash_password, verify_password

ABLATIONS = {t.code for t in load_catalogue().techniques.values() if t.category == "ablation"}


def test_argon2id_hash_round_trip():
    h = hash_password("correct horse battery")
    assert h.startswith("$argon2id$")
    assert verify_password(h, "correct horse battery")
    assert not verify_password(h, "wrong")
    assert not verify_password("not-a-hash", "x")


def test_login_session_and_pages(client_for):
    c = client_for()
    assert c.get("/procedures").status_code == 303  # to /login
    assert c.get("/api/me").status_code == 401
    r = c.post("/login", data={"username": "op-h001", "password": "openir-demo-pass"})
    assert r.status_code == 303 and "openir_session" in r.headers["set-cookie"]
    assert "HttpOnly" in r.headers["set-cookie"] and "SameSite=lax" in r.headers["set-cookie"]
    assert c.get("/procedures").status_code == 200
    assert c.get("/api/me").json()["hospital_code"] == "H001"


def test_csrf_required_for_session_writes(client_for):
    c = client_for("op-h001")
    token = c.headers.pop("X-CSRF-Token")
    assert c.post("/api/tokens", json={"name": "x"}).status_code == 403
    assert c.post("/api/tokens", json={"name": "x"}, headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert c.post("/lang", data={"lang": "zh-CN"}).status_code == 403
    assert c.post("/api/tokens", json={"name": "x"}, headers={"X-CSRF-Token": token}).status_code == 200


def test_bearer_token_for_machines(client_for):
    c = client_for("op-h001")
    token = c.post("/api/tokens", json={"name": "modality"}).json()["token"]
    m = client_for()
    h = {"Authorization": f"Bearer {token}"}
    assert m.get("/api/me", headers=h).json()["username"] == "op-h001"
    # no cookie, so no CSRF token is needed to write
    r = m.post("/api/procedures/check", json={"technique": "tace", "operator_code": "H001-OP01"}, headers=h)
    assert r.status_code == 200
    assert m.get("/api/me", headers={"Authorization": "Bearer oir_wrong"}).status_code == 401


def test_login_locks_the_account_not_the_address(client_for, web_app):
    c = client_for()
    codes = [c.post("/api/login", json={"username": "qo-h003", "password": f"bad{i}"}).status_code for i in range(6)]
    assert codes[:5] == [401] * 5 and codes[5] == 429
    # even the right password is refused while locked, and the answer says how long to wait
    r = c.post("/api/login", json={"username": "qo-h003", "password": "openir-demo-pass"})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    # a colleague behind the same hospital address still logs in (one NAT per hospital)
    assert c.post("/api/login", json={"username": "op-h003", "password": "openir-demo-pass"}).status_code == 200
    web_app.state.ctx.limiter.reset("user:qo-h003", "ip:testclient")
    assert c.post("/api/login", json={"username": "qo-h003", "password": "openir-demo-pass"}).status_code == 200


def test_only_admin_adds_users(client_for, login_as):
    body = {"username": "new-op", "password": "a-long-password", "role": "operator", "hospital_code": "H001"}
    assert client_for("qo-h001").post("/api/users", json=body).status_code == 403
    assert client_for("admin").post("/api/users", json=body).status_code == 200
    c = client_for()
    login_as(c, "new-op", "a-long-password")
    assert c.get("/api/me").json()["role"] == "operator"


def test_reads_and_changes_are_audited(client_for, web_app):
    c = client_for("qo-h002")
    pid = c.get("/api/procedures?limit=1").json()["items"][0]["id"]
    c.get(f"/api/cases/{pid}")
    with web_app.state.ctx.engine.connect() as conn:
        rows = conn.execute(sa.select(AuditLog.action, AuditLog.table_name).where(
            AuditLog.actor == "qo-h002", AuditLog.row_key == str(pid))).all()
    assert ("read", "procedures") in rows


def test_case_image_reads_are_audited(client_for, web_app):
    """Every route that serves a case's pixels writes an audit row; a refused read writes none."""
    c = client_for("op-h003")
    items = c.get("/api/procedures?limit=500").json()["items"]
    pid = min(i["id"] for i in items if i["technique"] in ABLATIONS)  # the seed images its first ablations

    def image_reads(actor: str) -> int:
        with web_app.state.ctx.engine.connect() as conn:
            return conn.scalar(sa.select(sa.func.count()).select_from(AuditLog).where(
                AuditLog.actor == actor, AuditLog.action == "read", AuditLog.table_name == "case_images",
                AuditLog.row_key == str(pid)))

    before = image_reads("op-h003")
    assert c.get(f"/api/cases/{pid}/slice.png?axis=coronal&index=3").status_code == 200
    assert image_reads("op-h003") == before + 1
    assert c.get(f"/api/cases/{pid}/points3d").status_code == 200
    assert image_reads("op-h003") == before + 2
    other = client_for("op-h004")
    assert other.get(f"/api/cases/{pid}/slice.png").status_code == 404
    assert image_reads("op-h004") == 0
