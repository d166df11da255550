"""``openir serve``: the web application on the embedded default or OPENIR_DATABASE_URL."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console


def serve(
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8000, help="port"),
    db: str | None = typer.Option(None, "--db", help="database URL (default: OPENIR_DATABASE_URL, else SQLite in OPENIR_HOME)"),
    home: Path | None = typer.Option(None, help="data folder (default: OPENIR_HOME)"),
    demo: bool = typer.Option(False, help="fill an empty database with demo hospitals, users and cases"),
    workers: int = typer.Option(1, min=1, help="web worker processes (they share logins, limits and caches "
                                "through the database)"),
) -> None:
    """Serve the web pages and the JSON API (OpenAPI description at /openapi.json)."""
    import os

    import uvicorn

    from openir.registry import count_procedures, session_scope
    from openir.web.app import create_app
    from openir.web.models import User
    from openir.web.seed import seed_demo

    console = Console()
    app = create_app(db, home=home)  # also creates/migrates the tables once, before any worker starts
    ctx = app.state.ctx
    if demo:
        with session_scope(ctx.engine) as s:
            empty = not count_procedures(s)
            has_users = s.query(User).count() > 0
        if empty:
            info = seed_demo(ctx)
            console.print(f"[green]demo data[/green]: users {', '.join(info['users'])}; password {info['password']}")
        else:
            console.print("[yellow]--demo: the registry already holds procedures, so no demo data or users were "
                          "added[/yellow]" + ("" if has_users else "; there is no user yet: create the first "
                                              "administrator with `openir users add-admin NAME`"))
    url = ctx.engine.url.render_as_string(hide_password=False)
    console.print(f"OpenIR on http://{host}:{port}  (database {ctx.engine.url.render_as_string(hide_password=True)}, "
                  f"{workers} worker{'s' if workers > 1 else ''})")
    if workers < 2:
        uvicorn.run(app, host=host, port=port, log_level="warning")
        return
    # several processes: uvicorn imports the app factory in each; settings travel in the environment
    os.environ["OPENIR_WEB_DB"] = url
    os.environ["OPENIR_HOME"] = str(ctx.home)
    os.environ.setdefault("OPENIR_STORAGE", str(ctx.storage))
    uvicorn.run("openir.web.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level="warning")
