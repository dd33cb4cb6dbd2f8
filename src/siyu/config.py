"""Runtime settings, read from SIYU_* environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def _default_data_dir() -> Path:
    return Path(os.environ.get("SIYU_DATA_DIR", "var")).resolve()


@dataclass(frozen=True)
class Settings:
    """Where siyu keeps its state and how it serves.

    data_dir holds the embedded stores: ``state.sqlite`` (SQLAlchemy), ``warehouse.duckdb`` (customer data)
    and ``huey.sqlite`` (background jobs).  ``database_url`` switches state to PostgreSQL.
    """

    data_dir: Path = field(default_factory=_default_data_dir)
    database_url: str = ""
    warehouse_path: str = ""
    huey_url: str = ""  # Huey's queue: "" = <data_dir>/huey.sqlite; redis://host:port/db (SIYU_REDIS_URL)
    # an Ibis connection string for analytics (pyspark://local[2], trino://…, clickhouse://…, bigquery://…);
    # "" = the embedded DuckDB warehouse (SIYU_WAREHOUSE; see docs/warehouse.md)
    warehouse_url: str = ""
    secret_key: str = "siyu-dev-secret-change-me"
    host: str = "127.0.0.1"
    port: int = 8000
    # Segment-compatible ingestion limits (documented by Segment's HTTP API).
    max_event_bytes: int = 32 * 1024
    max_batch_bytes: int = 500 * 1024
    max_batch_events: int = 2500
    max_message_id_chars: int = 100
    rate_limit_per_second: float = 2000.0  # requests per write key (SIYU_RATE_LIMIT_PER_SECOND)
    rate_limit_burst: int = 4000  # SIYU_RATE_LIMIT_BURST
    # False: this process only writes acknowledged events to the ingest log; the next process that opens the
    # warehouse loads them (SIYU_INGEST_LOADER=off; for log-only API workers and crash tests)
    ingest_loader: bool = True
    # DuckDB threads while ingestion is busy (all cores again after 2 s idle); 0 = never narrow DuckDB
    # (SIYU_INGEST_BUSY_THREADS; see siyu.services.ingest.writer._ThreadsPolicy)
    ingest_busy_threads: int = 1
    # processes that accept /v1 requests behind the proxy: each enforces rate_limit_per_second / ingest_processes
    # (SIYU_INGEST_PROCESSES; `siyu serve-ingest --workers N` sets N when unset)
    ingest_processes: int = 1

    @property
    def state_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'state.sqlite'}"

    @property
    def warehouse_file(self) -> str:
        return self.warehouse_path or str(self.data_dir / "warehouse.duckdb")

    @property
    def imports_dir(self) -> Path:
        return self.data_dir / "imports"

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Build settings from the environment; keyword overrides win."""
        env = os.environ
        values: dict[str, object] = {
            "data_dir": _default_data_dir(),
            "database_url": env.get("SIYU_DATABASE_URL", ""),
            "warehouse_path": env.get("SIYU_WAREHOUSE_PATH", ""),
            "huey_url": env.get("SIYU_REDIS_URL") or env.get("SIYU_HUEY_URL", ""),  # redis://… = Huey on Redis
            "warehouse_url": env.get("SIYU_WAREHOUSE", ""),
            "secret_key": env.get("SIYU_SECRET_KEY", "siyu-dev-secret-change-me"),
            "host": env.get("SIYU_HOST", "127.0.0.1"),
            "port": int(env.get("SIYU_PORT", "8000")),
            "ingest_loader": env.get("SIYU_INGEST_LOADER", "on").lower() not in {"off", "0", "false", "no"},
            "ingest_busy_threads": int(env.get("SIYU_INGEST_BUSY_THREADS", "1")),
            "ingest_processes": max(1, int(env.get("SIYU_INGEST_PROCESSES", "1"))),
            "rate_limit_per_second": float(env.get("SIYU_RATE_LIMIT_PER_SECOND", "2000")),
            "rate_limit_burst": int(env.get("SIYU_RATE_LIMIT_BURST", "4000")),
        }
        values.update(overrides)
        if isinstance(values["data_dir"], str):
            values["data_dir"] = Path(values["data_dir"]).resolve()
        return cls(**values)  # type: ignore[arg-type]
