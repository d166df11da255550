"""``openir users``: web accounts from the command line (add, list, disable, enable, first admin)."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Web accounts: add, list, disable/enable, create the first administrator.",
                  no_args_is_help=True)
DB = typer.Option(None, "--db", help="database URL (default: OPENIR_DATABASE_URL, else SQLite in OPENIR_HOME)")


def _engine(db: str | None):
    from openir.registry import init_db, make_engine
    from openir.web.models import create_web_tables

    engine = make_engine(db)
    init_db(engine=engine)
    create_web_tables(engine)
    return engine


def _password(stdin: bool) -> str:
    if stdin:
        return sys.stdin.readline().rstrip("\n")
    return typer.prompt("password (at least 10 characters)", hide_input=True, confirmation_prompt=True)


@app.command("add")
def add(
    username: str = typer.Argument(..., help="login name: letters, digits, . _ -"),
    role: str = typer.Option(..., "--role", help="operator | quality_officer | centre | admin"),
    hospital: str | None = typer.Option(None, "--hospital", help="hospital code (hospital roles only)"),
    operator: str | None = typer.Option(None, "--operator", help="operator code of an operator-user"),
    lang: str = typer.Option("en", "--lang", help="en | zh-CN"),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="read the password from stdin"),
    db: str | None = DB,
) -> None:
    """Add an account."""
    from openir.web.accounts import add_account

    body = add_account(_engine(db), {"username": username, "password": _password(password_stdin), "role": role,
                                     "hospital_code": hospital, "operator_code": operator, "lang": lang})
    Console().print(f"[green]added[/green] {body.username} ({body.role}{', ' + body.hospital_code if body.hospital_code else ''})")


@app.command("add-admin")
def add_admin(
    username: str = typer.Argument("admin", help="login name of the first administrator"),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="read the password from stdin"),
    db: str | None = DB,
) -> None:
    """Create the first administrator of a new installation (refused once one exists)."""
    from openir.web.accounts import add_first_admin

    body = add_first_admin(_engine(db), username, _password(password_stdin))
    Console().print(f"[green]administrator {body.username} created[/green]; log in and add the other accounts")


@app.command("list")
def list_(db: str | None = DB) -> None:
    """List the accounts (never their passwords)."""
    from openir.web.accounts import list_accounts

    t = Table("user", "role", "hospital", "operator", "lang", "active", "created")
    for u in list_accounts(_engine(db)):
        t.add_row(u["username"], u["role"], u["hospital"], u["operator"], u["lang"],
                  "yes" if u["active"] else "[red]no[/red]", u["created"])
    Console(width=200).print(t)


@app.command("disable")
def disable(username: str = typer.Argument(...), db: str | None = DB) -> None:
    """Disable an account: its sessions and API tokens stop working at once."""
    from openir.web.accounts import set_active

    set_active(_engine(db), username, False)
    Console().print(f"{username} disabled")


@app.command("enable")
def enable(username: str = typer.Argument(...), db: str | None = DB) -> None:
    """Enable a disabled account again."""
    from openir.web.accounts import set_active

    set_active(_engine(db), username, True)
    Console().print(f"{username} enabled")
