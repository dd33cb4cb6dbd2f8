"""`siyu serve-public`: processes of their own for the public mobile pages (/m/), next to `siyu serve`."""

from __future__ import annotations

import os
import sys

import typer

from siyu.cli.common import console


def serve_public(
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8002, help="port; route /m/ of the reverse proxy here"),
    workers: int = typer.Option(2, min=1, max=64, help="processes sharing the port (≈ one per core)"),
    main_url: str = typer.Option(
        "http://127.0.0.1:8000", help="the main process (`siyu serve`): requests that need the warehouse go there"
    ),
) -> None:
    """Serve the public pages (/m/: campaigns, help, teams, gifts, lottery, forms) from N processes on the same
    SIYU_DATA_DIR as `siyu serve`. They never open the DuckDB warehouse: a request that needs it (a sign-in,
    someone new to OneID) is handed to --main-url. Each process enforces 1/N of the per-visitor limits."""
    os.environ["SIYU_MAIN_URL"] = main_url
    os.environ["SIYU_PUBLIC_PROCESSES"] = str(workers)
    os.environ["SIYU_INGEST_LOADER"] = "off"
    console.print(
        f"siyu public pages on [bold]http://{host}:{port}/m/[/bold] with {workers} process(es); "
        f"the warehouse and everything else: {main_url}",
        highlight=False,
    )
    # a listening socket per process (SO_REUSEPORT): a burst's kept-alive connections spread over the processes
    # (siyu.api.reuseport); exec'd so the spawned workers re-import that small module, not this CLI
    args = ["-m", "siyu.api.reuseport", "siyu.api.public_app:app_from_env", host, str(port), str(workers)]
    os.execv(sys.executable, [sys.executable, *args])


def register(app: typer.Typer) -> None:
    """Attach `serve-public` to the top-level app."""
    app.command("serve-public")(serve_public)
