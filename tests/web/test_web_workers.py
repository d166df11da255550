"""Several web workers on one database behave as one server: failed logins, lockouts, caches and the
pseudonym key are shared, and survive a restart."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient

from openir.core import InputError, Settings, load_secret
from openir.web import create_app
from openir.web.models import LoginFailure, now
from openir.web.security import LoginThrottle, ThrottlePolicy

PASSWORD = "openir-demo-pass"


@pytest.fixture()
def two_workers(tmp_path, monkeypatch):
    """Two applications (as two uvicorn workers would build them) on one database and one home."""
    from openir.web import seed_demo

    monkeypatch.delenv("OPENIR_SECRET_KEY", raising=False)
    url = f"sqlite:///{tmp_path / 'openir.db'}"
    a = create_app(url, home=tmp_path, cache_ttl_s=3600.0)
    seed_demo(a.state.ctx, procedures=40, hospitals=2, password=PASSWORD, cases=0, dose_reports=0)
    b = create_app(url, home=tmp_path, cache_ttl_s=3600.0)
    return a, b


def test_same_pseudonym_key_in_every_worker_and_after_a_restart(two_workers, tmp_path):
    a, b = two_workers
    assert a.state.ctx.secret == b.state.ctx.secret and len(a.state.ctx.secret) == 32
    restarted = create_app(f"sqlite:///{tmp_path / 'openir.db'}", home=tmp_path)
    assert restarted.state.ctx.secret == a.state.ctx.secret
    assert (tmp_path / "secret.key").stat().st_mode & 0o077 == 0  # readable by the owner only


def test_production_refuses_to_invent_a_key(tmp_path):
    with pytest.raises(InputError, match="no pseudonym key"):
        load_secret(Settings(home=tmp_path, production=True))
    assert not (tmp_path / "secret.key").exists()
    with pytest.raises(InputError, match="too short"):
        load_secret(Settings(home=tmp_path, secret_key="abcd"))
    key = "ab" * 32
    assert load_secret(Settings(home=tmp_path, production=True, secret_key=key)) == bytes.fromhex(key)


def test_lockout_is_counted_once_across_workers(two_workers):
    a, b = two_workers
    ca, cb = TestClient(a), TestClient(b)
    codes = []
    for i in range(6):
        c = ca if i % 2 == 0 else cb  # a load balancer alternating between the workers
        codes.append(c.post("/api/login", json={"username": "qo-h001", "password": f"bad{i}"}).status_code)
    assert codes == [401] * 5 + [429]
    assert cb.post("/api/login", json={"username": "qo-h001", "password": PASSWORD}).status_code == 429
    # and a session opened on one worker is valid on the other
    r = ca.post("/api/login", json={"username": "op-h001", "password": PASSWORD})
    assert r.status_code == 200
    cb.cookies.update(ca.cookies)
    assert cb.get("/api/me").json()["username"] == "op-h001"


def test_backoff_doubles_per_failure_beyond_the_limit(tmp_path):
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from openir.web.models import create_web_tables

    engine = create_engine(f"sqlite:///{tmp_path / 't.db'}")
    create_web_tables(engine)
    thr = LoginThrottle(engine, ThrottlePolicy(account_limit=3, backoff_s=60, max_backoff_s=300, window_s=900))
    assert thr.retry_after("user:x") == 0
    t = now()
    with Session(engine) as s, s.begin():
        s.add_all(LoginFailure(key="user:x", at=t - dt.timedelta(seconds=3 - i)) for i in range(3))
    assert 50 < thr.retry_after("user:x") <= 60  # 3 failures: 60 s after the last
    thr.fail("user:x")
    assert 115 < thr.retry_after("user:x") <= 120  # 4: 120 s
    thr.fail("user:x")
    thr.fail("user:x")
    assert 295 < thr.retry_after("user:x") <= 300  # capped
    assert thr.retry_after("user:y") == 0
    thr.reset("user:x")
    assert thr.retry_after("user:x") == 0


def test_unknown_user_costs_a_password_check(two_workers, monkeypatch):
    """No timing oracle: a wrong user name runs the same Argon2 verification as a wrong password."""
    import openir.web.security as sec

    calls = []
    real = sec._hasher

    class Counting:
        def verify(self, h, p):
            calls.append(h)
            return real.verify(h, p)

    monkeypatch.setattr(sec, "_hasher", Counting())
    c = TestClient(two_workers[0])
    assert c.post("/api/login", json={"username": "nobody-here", "password": "x"}).status_code == 401
    assert c.post("/api/login", json={"username": "op-h001", "password": "x"}).status_code == 401
    assert len(calls) == 2 and calls[0] == sec._DUMMY_HASH and calls[1] != sec._DUMMY_HASH


def test_a_write_on_one_worker_expires_the_other_workers_cache(two_workers, monkeypatch):
    import openir.web.context as context

    monkeypatch.setattr(context, "GENERATION_CHECK_S", 0.0)
    a, b = two_workers
    made = []
    value = b.state.ctx.cached("k", lambda: made.append(1) or len(made))
    assert value == 1 and b.state.ctx.cached("k", lambda: made.append(1) or len(made)) == 1
    a.state.ctx.bump()  # a procedure saved through worker a
    b.state.ctx._cache["k"] = (b.state.ctx._cache["k"][0] - 10.0, 1)  # older than the 5 s grace
    assert b.state.ctx.cached("k", lambda: made.append(1) or len(made)) == 2


def test_an_old_hash_is_upgraded_at_login(two_workers):
    import sqlalchemy as sa
    from argon2 import PasswordHasher

    from openir.web.models import User
    from openir.web.security import needs_rehash

    a, _ = two_workers
    old = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4).hash(PASSWORD)  # the library default
    with a.state.ctx.engine.begin() as conn:
        conn.execute(sa.update(User).where(User.username == "op-h002").values(password_hash=old))
    assert needs_rehash(old)
    assert TestClient(a).post("/api/login", json={"username": "op-h002", "password": PASSWORD}).status_code == 200
    with a.state.ctx.engine.connect() as conn:
        new = conn.scalar(sa.select(User.password_hash).where(User.username == "op-h002"))
    assert new != old and not needs_rehash(new) and "m=19456,t=2,p=1" in new
