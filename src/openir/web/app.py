"""The FastAPI application: JSON API under /api (OpenAPI at /openapi.json), pages, own static files."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import event
from starlette.exceptions import HTTPException as StarletteHTTPException

from openir import __version__
from openir.core import OpenIRError, get_settings, load_secret
from openir.registry import init_db, make_engine

from .context import Ctx
from .deps import LoginRequired
from .i18n import pick
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
    from . import api, credentials_view, drg_view, pages, sop_check, training_view

    app.include_router(api.router)
    app.include_router(sop_check.router)
    app.include_router(pages.router)
    app.include_router(drg_view.router)
    app.include_router(credentials_view.router)
    app.include_router(training_view.router)  # issue 22: teaching library and plan exercises
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.exception_handler(LoginRequired)
    async def _to_login(request: Request, exc: LoginRequired):
        return RedirectResponse("/login", 303)

    @app.exception_handler(OpenIRError)
    async def _input(request: Request, exc: OpenIRError):
        if _wants_html(request):
            return _error_page(request, 422, str(exc))
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        if _wants_html(request):
            return _error_page(request, exc.status_code, exc.detail if isinstance(exc.detail, str) else "",
                               headers=getattr(exc, "headers", None))
        return await http_exception_handler(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        """422 as FastAPI gives it, with each message in the caller's language."""
        from .i18n import translator
        from .messages import validation_text

        p = _caller(request)
        t = translator(p.lang if p else pick(request.cookies.get("openir_lang"), request.headers.get("accept-language")))
        detail = [{**e, "msg": validation_text(t, e)} for e in jsonable_encoder(exc.errors())]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception):  # logged by the server; never a traceback to a user
        if _wants_html(request):
            return _error_page(request, 500, "server_error")
        return JSONResponse({"detail": "server error"}, status_code=500)

    @app.middleware("http")
    async def _headers(request: Request, call_next):
        resp = await call_next(request)
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'")
        if not request.url.path.startswith("/static/"):  # pages and API answers hold patient data
            resp.headers.setdefault("Cache-Control", "no-store")
        return resp

    return app


def _wants_html(request: Request) -> bool:
    """A browser asking for a page (not the JSON API): it gets an HTML error page."""
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


def _caller(request: Request):
    """The logged-in caller of a request (for their language and menu), or None; never raises."""
    from openir.registry import session_scope

    from .security import SESSION_COOKIE, session_principal

    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    try:
        with session_scope(request.app.state.ctx.engine) as s:
            return session_principal(s, cookie)
    except Exception:  # an error answer must render even when the database is the problem
        return None


def _error_page(request: Request, status: int, message: str, headers: dict | None = None):
    from .i18n import catalogue
    from .pages import render

    p = _caller(request)
    generic = {403: "not_allowed", 404: "not_found", 500: "server_error"}
    title = f"error_{status}" if f"error_{status}" in catalogue("en") else "error_other"
    text = message if message and message not in ("Not Found", "Forbidden", "not found") else generic.get(status, "")
    resp = render(request, "error.html", p, status=status, title=title, message=text, messages=catalogue("en"))
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def app_from_env() -> FastAPI:
    """The application as configured by ``OPENIR_*`` settings: the factory that each worker of
    ``openir serve --workers N`` (uvicorn, by import string) calls."""
    import os

    return create_app(os.environ.get("OPENIR_WEB_DB") or None, home=os.environ.get("OPENIR_HOME") or None)
