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
    workers: int = typer.Option(1, help="uvicorn worker processes (login rate limits are per process)"),
) -> None:
    """Serve the web pages and the JSON API (OpenAPI description at /openapi.json)."""
    import uvicorn

    from openir.registry import count_procedures, session_scope
    from openir.web.app import create_app
    from openir.web.seed import seed_demo

    app = create_app(db, home=home)
    ctx = app.state.ctx
    if demo:
        with session_scope(ctx.engine) as s:
            empty = not count_procedures(s)
        if empty:
            info = seed_demo(ctx)
            Console().print(f"[green]demo data[/green]: users {', '.join(info['users'])}; password {info['password']}")
    Console().print(f"OpenIR on http://{host}:{port}  (database {ctx.engine.url.render_as_string(hide_password=True)})")
    uvicorn.run(app, host=host, port=port, workers=1 if workers < 2 else workers, log_level="warning")
