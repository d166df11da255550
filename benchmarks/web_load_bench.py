"""Load test of the web application: N concurrent users on loopback browse the dashboards and
enter procedures for S seconds, pausing about a second between
requests as a person reading does (--think; 0 = back-to-back); prints p50/p95/p99 latency, throughput and errors, on SQLite and
(if reachable) PostgreSQL. Baseline: the same request mix from ONE user in the same run (the
uncontended latency); the ratio says what concurrency costs.

    .venv/bin/python benchmarks/web_load_bench.py [--seconds 60] [--users 50] [--db sqlite|postgres|both]

The server runs as a separate uvicorn process (so the load generator does not share its GIL),
bound to 127.0.0.1 only, and is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import sqlalchemy as sa

PASSWORD = "openir-demo-pass"
PG_URL = os.environ.get("OPENIR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(url: str, home: Path, procedures: int) -> list[str]:
    from openir.web import create_app, seed_demo

    app = create_app(url, home=home)
    info = seed_demo(app.state.ctx, procedures=procedures, hospitals=8, cases=1, dose_reports=32)
    app.state.ctx.engine.dispose()
    return [u for u in info["users"] if u.startswith(("qo-", "op-"))]


async def user_loop(base: str, username: str, deadline_box: list[float], lat: list[tuple[str, float]], errors: list[str],
                    rng: random.Random, think_s: float) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as c:
        t0 = time.perf_counter()
        r = await c.post("/api/login", json={"username": username, "password": PASSWORD})
        r.raise_for_status()
        lat.append(("POST /api/login", time.perf_counter() - t0))  # logins count: all users log in at once
        c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        hosp = r.json()["hospital_code"]
        ops = (await c.get("/api/catalogue")).json()
        techs = [t["code"] for t in ops]
        while deadline_box[0] == 0:
            await asyncio.sleep(0.01)
        while time.perf_counter() < deadline_box[0]:
            if think_s:
                await asyncio.sleep(rng.uniform(0.5, 1.5) * think_s)
                if time.perf_counter() >= deadline_box[0]:
                    break
            k = rng.random()
            if k < 0.12:
                name, req = "POST /api/procedures", c.post("/api/procedures", json={
                    "uid": "LOAD-" + uuid.uuid4().hex[:16], "patient_key": "PKL-" + uuid.uuid4().hex[:8],
                    "hospital_code": hosp, "operator_code": f"{hosp}-OP01", "date": "2024-07-01",
                    "technique": rng.choice(techs), "lesions": [{"size_mm": 20}]})
            elif k < 0.25:
                name, req = "POST /api/procedures/check", c.post("/api/procedures/check", json={
                    "technique": rng.choice(techs), "operator_code": f"{hosp}-OP01"})
            else:
                name = rng.choice(["GET /quality", "GET /dose", "GET /procedures", "GET /api/quality/indicators",
                                   "GET /api/quality/funnel/major_ae.svg", "GET /api/dose/alerts", "GET /api/quality/ratings"])
                req = c.get(name.split(" ", 1)[1])
            t0 = time.perf_counter()
            try:
                r = await req
                dt = time.perf_counter() - t0
                if r.status_code >= 400:
                    errors.append(f"{name} {r.status_code}")
                lat.append((name, dt))
            except Exception as exc:  # a refused or timed-out request is an error, not a crash
                errors.append(f"{name} {exc.__class__.__name__}")


async def drive(base: str, users: list[str], n: int, seconds: float, think_s: float) -> tuple[list[tuple[str, float]], list[str], float]:
    lat: list[tuple[str, float]] = []
    errors: list[str] = []
    box = [0.0]
    tasks = [asyncio.create_task(user_loop(base, users[i % len(users)], box, lat, errors, random.Random(i), think_s)) for i in range(n)]
    await asyncio.sleep(min(30, 0.2 * n + 2))  # everyone logs in first (Argon2 is slow on purpose)
    t0 = time.perf_counter()
    box[0] = t0 + seconds
    await asyncio.gather(*tasks)
    return lat, errors, time.perf_counter() - t0


def run_server(url: str, home: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "OPENIR_HOME": str(home), "OPENIR_DATABASE_URL": url}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "openir.web.app:create_app", "--host", "127.0.0.1",
                             "--port", str(port), "--log-level", "warning"], env=env)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.terminate()
    raise SystemExit("server did not start")


def summary(label: str, lat: list[tuple[str, float]], errors: list[str], wall: float) -> dict:
    ms = np.array([d for _, d in lat]) * 1000
    out = {"label": label, "requests": len(ms), "rps": len(ms) / wall if wall else 0.0, "errors": len(errors),
           "p50_ms": float(np.percentile(ms, 50)) if len(ms) else float("nan"),
           "p95_ms": float(np.percentile(ms, 95)) if len(ms) else float("nan"),
           "p99_ms": float(np.percentile(ms, 99)) if len(ms) else float("nan")}
    logins = np.array([d for n, d in lat if n == "POST /api/login"]) * 1000
    if len(logins):
        out["login_p95_ms"] = float(np.percentile(logins, 95))
        print(f"  {label:<28} {len(logins):>7} logins started together: p50 {np.percentile(logins, 50):6.1f} ms  "
              f"p95 {out['login_p95_ms']:6.1f} ms  max {logins.max():6.1f} ms")
    print(f"  {label:<28} {out['requests']:>7} req  {out['rps']:7.1f} req/s  p50 {out['p50_ms']:6.1f} ms  "
          f"p95 {out['p95_ms']:6.1f} ms  p99 {out['p99_ms']:6.1f} ms  errors {out['errors']}")
    if errors:
        print("    first errors:", errors[:5])
    return out


def bench(kind: str, url: str, args: argparse.Namespace) -> dict | None:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        schema = None
        if kind == "postgres":
            schema = f"webload_{uuid.uuid4().hex[:8]}"
            eng = sa.create_engine(url)
            with eng.begin() as c:
                c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
            url = url + ("&" if "?" in url else "?") + f"options=-csearch_path%3D{schema}"
        else:
            url = f"sqlite:///{home / 'openir.db'}"
        try:
            users = prepare(url, home, args.procedures)
            proc, base = run_server(url, home)
            try:
                print(f"{kind}: {args.procedures} seeded procedures, {args.users} users, {args.seconds:g} s, think time {args.think:g} s")
                lat1, err1, wall1 = asyncio.run(drive(base, users, 1, min(args.seconds, 10), 0.0))
                base_s = summary("baseline: 1 user, no pause", lat1, err1, wall1)
                latn, errn, walln = asyncio.run(drive(base, users, args.users, args.seconds, args.think))
                load_s = summary(f"load: {args.users} users", latn, errn, walln)
                print(f"  ratio p95 (load / baseline): {load_s['p95_ms'] / base_s['p95_ms']:.2f}x;  "
                      f"bar p95 < 300 ms and no errors: {'MET' if load_s['p95_ms'] < 300 and not errn else 'NOT MET'}")
                return load_s
            finally:
                proc.terminate()
                proc.wait(timeout=10)
        finally:
            if schema:
                with eng.begin() as c:
                    c.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
                eng.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--think", type=float, default=1.0,
                    help="mean pause between a user's requests in s (a person reading a page); 0 = closed loop")
    ap.add_argument("--procedures", type=int, default=5000)
    ap.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    args = ap.parse_args()
    if args.db in ("sqlite", "both"):
        bench("sqlite", "", args)
    if args.db in ("postgres", "both"):
        try:
            e = sa.create_engine(PG_URL)
            with e.connect() as c:
                c.execute(sa.text("select 1"))
            e.dispose()
        except Exception as exc:
            print(f"postgres: not reachable at {PG_URL} ({exc.__class__.__name__}); skipped")
            return
        bench("postgres", PG_URL, args)


if __name__ == "__main__":
    main()
