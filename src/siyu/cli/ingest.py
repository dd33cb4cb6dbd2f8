"""`siyu serve-ingest`: ingest-only processes that acknowledge Segment events on the shared ingest log."""

from __future__ import annotations

import os
import sys

import typer

from siyu.cli.common import console, err_console


def serve_ingest(
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8001, help="port; route /v1/ of the reverse proxy here"),
    workers: int = typer.Option(1, min=1, max=64, help="uvicorn worker processes sharing the port (≈ one per core)"),
    healthcheck_timeout: int = typer.Option(
        30, help="seconds a worker may take to answer the supervisor's ping before it is restarted (busy or starting)"
    ),
) -> None:
    """Serve only the Segment /v1/* endpoints (+ /healthz); the warehouse process (`siyu serve`) loads the log.

    Never opens the DuckDB warehouse, so it runs next to `siyu serve` on the same SIYU_DATA_DIR. Each of the N
    workers enforces 1/SIYU_INGEST_PROCESSES of the per-key rate limit (N when unset)."""
    import uvicorn

    from siyu.config import Settings
    from siyu.stores.state.db import make_engine, migrate

    os.environ["SIYU_INGEST_LOADER"] = "off"
    os.environ.setdefault("SIYU_INGEST_PROCESSES", str(workers))
    settings = Settings.from_env()
    engine = make_engine(settings.state_url)
    try:
        migrate(engine)  # once, before the workers start (idempotent)
    finally:
        engine.dispose()
    if settings.ingest_processes < workers:
        err_console.print(
            f"[yellow]note:[/yellow] SIYU_INGEST_PROCESSES={settings.ingest_processes} is less than --workers "
            f"{workers}: together they allow more than {settings.rate_limit_per_second:g} requests/s per key"
        )
    rate = settings.rate_limit_per_second / settings.ingest_processes
    console.print(
        f"siyu ingest is serving /v1 on [bold]http://{host}:{port}[/bold] with {workers} worker(s), "
        f"{rate:g} requests/s per write key each",
        highlight=False,
    )
    if workers == 1:
        uvicorn.run("siyu.api.ingest_app:app_from_env", factory=True, host=host, port=port, log_level="warning")
        return
    # N workers: uvicorn's supervisor (shared socket, restarts a dead worker).  exec `python -m uvicorn` so the
    # spawned workers re-import uvicorn's light __main__, not this CLI (whose imports outlast the health check)
    args = ["-m", "uvicorn", "siyu.api.ingest_app:app_from_env", "--factory", "--host", host, "--port", str(port)]
    args += ["--workers", str(workers), "--timeout-worker-healthcheck", str(healthcheck_timeout)]
    os.execv(sys.executable, [sys.executable, *args, "--log-level", "warning"])


def register(app: typer.Typer) -> None:
    """Attach `serve-ingest` to the top-level app."""
    app.command("serve-ingest")(serve_ingest)
