"""An ingest-only process (``siyu serve-ingest``): the state DB and the ingest log, never the DuckDB warehouse.

It authenticates write keys in the state DB (SQLite or PostgreSQL, cached ``write_keys.CACHE_SECONDS``), appends
acknowledged batches to its own segments of the shared ingest log and answers after fsync; the warehouse process
(``siyu serve``) tails the log directory and loads them.  Any number of such processes may run on the machine
that holds ``SIYU_DATA_DIR``.
"""

from __future__ import annotations

from typing import Any, NoReturn

from siyu.config import Settings
from siyu.services.context import Context
from siyu.services.errors import SiyuError


class NoWarehouse:
    """Stands in for the warehouse of an ingest-only process: any use is refused with an explanation."""

    def __getattr__(self, name: str) -> NoReturn:
        raise SiyuError(
            f"warehouse.{name} is not available in an ingest-only process (siyu serve-ingest); "
            "the warehouse process (siyu serve) loads what this process logs",
            "warehouse",
        )

    def close(self) -> None:
        """Nothing to close."""


def open_ingest_context(settings: Settings) -> Context:
    """A Context over the state DB only (no migration: the warehouse process or ``siyu migrate`` does that)."""
    return Context.state_only(settings, NoWarehouse())  # never loads: the warehouse process does


def health(ctx: Context) -> dict[str, Any]:
    """What an ingest process tells its health check: role, pid, this process's rate share."""
    import os

    from siyu.services.ingest.request import rate_share

    rate, burst = rate_share(ctx)
    return {
        "status": "ok",
        "role": "ingest",
        "pid": os.getpid(),
        "ingest_processes": ctx.settings.ingest_processes,
        "rate_limit_per_second": rate,
        "rate_limit_burst": burst,
    }
