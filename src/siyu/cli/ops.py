"""Operations commands: `siyu doctor`, `siyu migrate`, `siyu worker` (a Huey consumer process)."""

from __future__ import annotations

import typer
from rich.table import Table

from siyu.cli.common import console, err_console


def doctor() -> None:
    """Show which components are in use (SQLite or PostgreSQL, SQLite or Redis queue, warehouse) and check each."""
    from siyu.config import Settings
    from siyu.services.doctor import run_checks

    checks = run_checks(Settings.from_env())
    table = Table("component", "kind", "where", "status", "detail", "ms")
    for c in checks:
        status = "[green]ok[/green]" if c.ok else "[red]FAIL[/red]"
        table.add_row(c.component, c.kind, c.where, status, c.detail, f"{c.ms:.0f}")
    console.print(table)
    if not all(c.ok for c in checks):
        raise typer.Exit(1)


def migrate() -> None:
    """Bring the state database (SIYU_DATABASE_URL or the SQLite file) to the newest Alembic revision, and the
    embedded warehouse's tables up to date."""
    from alembic.script import ScriptDirectory

    from siyu.config import Settings
    from siyu.services.doctor import hide_password
    from siyu.stores.state.db import alembic_config, make_engine
    from siyu.stores.state.db import migrate as run_migrations

    settings = Settings.from_env()
    engine = make_engine(settings.state_url)
    try:
        run_migrations(engine)
        head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    finally:
        engine.dispose()
    console.print(f"state {hide_password(settings.state_url)} is at revision {head}")
    import duckdb

    from siyu.stores.warehouse import Warehouse

    try:  # the warehouse's tables are created / upgraded when it opens
        Warehouse(settings.warehouse_file).close()
        console.print(f"warehouse {settings.warehouse_file} is up to date")
    except duckdb.IOException as exc:
        if "lock" not in str(exc).lower():
            raise
        console.print("warehouse is open in a running siyu process: it upgrades its own tables when it starts")


def worker(
    workers: int = typer.Option(2, help="consumer threads (jobs mostly wait on the database or the network)"),
    scheduler: bool = typer.Option(False, help="also queue the periodic jobs (run exactly one scheduler)"),
    read_only_warehouse: bool = typer.Option(
        True, help="open the DuckDB warehouse read-only (another process, the API, writes it)"
    ),
) -> None:
    """Run a Huey consumer process on the queue SIYU_REDIS_URL names (the API then runs SIYU_HUEY_CONSUMER=off)."""
    from huey.consumer import Consumer

    from siyu.config import Settings
    from siyu.services.context import Context
    from siyu.services.imports.runner import requeue_interrupted
    from siyu.workers import schedule
    from siyu.workers.queue import get_huey, register_context

    settings = Settings.from_env()
    if not settings.huey_url:
        err_console.print(
            "[yellow]note:[/yellow] no SIYU_REDIS_URL: this worker shares the SQLite queue of "
            f"{settings.data_dir} (one machine only)"
        )
    ctx = Context.open(settings, read_only_warehouse=read_only_warehouse)
    register_context(ctx)
    sched = schedule.Scheduler(ctx).start() if scheduler else None
    consumer = Consumer(
        get_huey(settings),
        workers=workers,
        worker_type="thread",
        periodic=False,
        initial_delay=0.05,
        backoff=1.5,
        max_delay=0.5,
        check_worker_health=True,
    )
    requeue_interrupted(ctx)
    kind = "redis" if settings.huey_url else "sqlite"
    console.print(f"siyu worker: {workers} threads on the {kind} queue", highlight=False)
    try:
        consumer.run()  # until SIGINT / SIGTERM (graceful: running jobs finish)
    finally:
        if sched is not None:
            sched.stop()
        ctx.close()


def register(app: typer.Typer) -> None:
    """Attach the operations commands to the top-level app."""
    app.command()(doctor)
    app.command()(migrate)
    app.command()(worker)
