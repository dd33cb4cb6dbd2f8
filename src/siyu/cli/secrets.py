"""`siyu secrets`: secrets encrypted at rest in the state database — which key is in use, and key rotation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from siyu.cli.common import console, err_console
from siyu.config import Settings
from siyu.services import secrets
from siyu.services.context import Context
from siyu.services.errors import SiyuError
from siyu.stores.state.db import make_engine, migrate, session_factory
from siyu.stores.warehouse import Warehouse

app = typer.Typer(help="Secrets encrypted at rest (密钥加密存储): key status and rotation.", no_args_is_help=True)


@contextmanager
def open_context() -> Iterator[Context]:
    """The state database only (secrets live there), so this runs next to a serving process that holds the
    warehouse."""
    settings = Settings.from_env()
    engine = make_engine(settings.state_url)
    migrate(engine)
    ctx = Context(settings, engine, session_factory(engine), Warehouse(":memory:"))
    try:
        yield ctx
    except SiyuError as exc:
        err_console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from exc
    finally:
        ctx.close()


@app.command("status")
def status() -> None:
    """Which key encrypts stored secrets (its id and where it comes from); plain values left are encrypted now."""
    with open_context() as ctx:
        n = secrets.reseal_all(ctx)
        box = secrets.box(ctx)
    console.print(f"key {box.primary_id} ({box.source}); {len(box.keys) - 1} older key(s) can still decrypt")
    if n:
        console.print(f"encrypted or re-encrypted {n} stored secret(s) with key {box.primary_id}")


@app.command("rotate")
def rotate() -> None:
    """Re-encrypt every stored secret with a new key (key file mode: a new key is generated; SIYU_SECRET_KEY mode:
    set the new passphrase in SIYU_SECRET_KEY and the old one in SIYU_SECRET_KEY_PREVIOUS first)."""
    with open_context() as ctx:
        r = secrets.rotate(ctx)
    console.print(f"rotated: key {r.old_key} → {r.new_key} ({r.source}); {r.rewritten} secret(s) re-encrypted")
