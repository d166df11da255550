"""The FastAPI application: JSON API under /api (OpenAPI at /openapi.json), pages, own static files."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import event

from openir import __version__
from openir.core import OpenIRError, get_settings, load_secret
from openir.registry import init_db, make_engine

from .context import Ctx
from .deps import LoginRequired
from .models import create_web_tables

HERE = Path(__file__).parent


def _sqlite_concurrency(engine) -> None:
    """WAL and a busy timeout: many request threads on one SQLite file without 'database is locked'."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _wal(dbapi_conn, _record) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()


def create_app(url: str | None = None, *, home: str | Path | None = None, schema: str | None = None,
               secret: bytes | None = None, cache_ttl_s: float = 30.0) -> FastAPI:
    """The application on ``url`` (default: OPENIR_DATABASE_URL, else SQLite in OPENIR_HOME).

    The pseudonym key comes from ``secret``, else settings (``OPENIR_SECRET_KEY`` / the key file,
    by default ``home/secret.key``), so every worker and every restart uses the same one.
    """
    settings = get_settings()
    if home:
        settings = settings.model_copy(update={"home": Path(home)})
    home = settings.home
    home.mkdir(parents=True, exist_ok=True)
    if url is None and not get_settings().database_url:
        url = f"sqlite:///{home / 'openir.db'}"
    engine = make_engine(url, schema=schema)
    _sqlite_concurrency(engine)
    init_db(engine=engine)
    create_web_tables(engine)
    ctx = Ctx(engine=engine, home=home, secret=secret or load_secret(settings), storage=settings.storage_root,
              cache_ttl_s=cache_ttl_s)
    app = FastAPI(title="OpenIR", version=__version__, docs_url=None, redoc_url=None,  # their UIs load from a CDN
                  description="Registry entry, case view, dose and quality dashboards, remote consultation.")
    app.state.ctx = ctx
    from . import api, pages

    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.exception_handler(LoginRequired)
    async def _to_login(request: Request, exc: LoginRequired):
        return RedirectResponse("/login", 303)

    @app.exception_handler(OpenIRError)
    async def _input(request: Request, exc: OpenIRError):
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.middleware("http")
    async def _headers(request: Request, call_next):
        resp = await call_next(request)
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'")
        return resp

    return app


def app_from_env() -> FastAPI:
    """The application as configured by ``OPENIR_*`` settings: the factory that each worker of
    ``openir serve --workers N`` (uvicorn, by import string) calls."""
    import os

    return create_app(os.environ.get("OPENIR_WEB_DB") or None, home=os.environ.get("OPENIR_HOME") or None)
