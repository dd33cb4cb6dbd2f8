"""`siyu doctor`: which components the settings select (embedded or production) and whether each answers."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from siyu.config import Settings

SLOW_MS = 2000  # a check that takes longer than this is reported as failing (a hang is not "up")


@dataclass(frozen=True)
class Check:
    """One component: what it is (``kind``), where (password hidden), whether it answered and how fast."""

    component: str
    kind: str
    where: str
    ok: bool
    detail: str
    ms: float


def hide_password(url: str) -> str:
    """``url`` with any password replaced by ``***`` (settings are printed; secrets never are)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _timed(component: str, kind: str, where: str, probe: object) -> Check:
    t0 = time.perf_counter()
    try:
        detail = probe()  # type: ignore[operator]
        ok = True
    except Exception as exc:  # the doctor reports every failure instead of stopping at the first
        detail, ok = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}", False
    ms = (time.perf_counter() - t0) * 1000
    return Check(component, kind, where, ok, str(detail), round(ms, 1))


def check_state(settings: Settings) -> Check:
    """The state database answers ``SELECT 1`` and is at the newest Alembic revision."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy import text

    from siyu.stores.state.db import alembic_config, make_engine

    url = settings.state_url
    kind = "postgresql" if url.startswith("postgresql") else "sqlite"

    def probe() -> str:
        engine = make_engine(url)
        try:
            with engine.connect() as con:
                con.execute(text("SELECT 1"))
                current = MigrationContext.configure(con).get_current_revision()
            head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
        finally:
            engine.dispose()
        if current != head:
            raise RuntimeError(f"schema at revision {current}, newest is {head}: run `siyu migrate`")
        return f"schema at newest revision {head}"

    return _timed("state", kind, hide_password(url), probe)


def check_queue(settings: Settings) -> Check:
    """The Huey queue answers (Redis PING, or the SQLite queue file opens) and how many jobs wait."""
    from siyu.workers.queue import get_huey, queue_key

    url = settings.huey_url
    kind = "redis" if url else "sqlite"

    def probe() -> str:
        huey = get_huey(settings)
        if url:
            conn = huey.storage.conn
            conn.ping()
            info = conn.info("persistence")
            aof = "AOF on" if int(info.get("aof_enabled", 0)) else "AOF OFF (a restart may lose queued jobs)"
            return f"{huey.pending_count()} jobs waiting, {aof}"
        return f"{huey.pending_count()} jobs waiting"

    return _timed("queue", kind, hide_password(url or queue_key(settings)), probe)


def check_warehouse(settings: Settings) -> Check:
    """The warehouse: the embedded DuckDB file (a lock held by a running siyu process counts as up)."""
    if settings.warehouse_url:
        kind = settings.warehouse_url.split("://", 1)[0]
        where = hide_password(settings.warehouse_url)

        def probe_url() -> str:
            import ibis

            con = ibis.connect(settings.warehouse_url)
            try:
                return f"{len(con.list_tables())} tables"
            finally:
                con.disconnect()

        return _timed("warehouse", kind, where, probe_url)
    path = settings.warehouse_file

    def probe() -> str:
        import duckdb

        if path != ":memory:" and not Path(path).exists():
            raise RuntimeError("the warehouse file does not exist yet: run `siyu migrate` (or `siyu init`)")
        try:
            con = duckdb.connect(path, read_only=True)
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                return "open in a running siyu process (file lock held)"
            raise
        try:
            n = con.execute("SELECT count(*) FROM duckdb_tables()").fetchone()
        finally:
            con.close()
        return f"{n[0] if n else 0} tables"

    return _timed("warehouse", "duckdb", path, probe)


def check_disk(settings: Settings) -> Check:
    """Free space where the ingest log and the embedded stores live; unloaded ingest-log segments."""

    def probe() -> str:
        usage = shutil.disk_usage(settings.data_dir)
        free_mb = usage.free / 1e6
        segments = len(list((settings.data_dir / "ingest-log").glob("*.arrows")))
        if free_mb < 100:
            raise RuntimeError(f"only {free_mb:.0f} MB free: ingestion will answer 507; free space")
        return f"{free_mb:,.0f} MB free, {segments} ingest-log segments not yet deleted"

    return _timed("disk", "data_dir", str(settings.data_dir), probe)


def run_checks(settings: Settings) -> list[Check]:
    """Every component's check (each bounded by its own client's timeouts)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return [check_state(settings), check_queue(settings), check_warehouse(settings), check_disk(settings)]
