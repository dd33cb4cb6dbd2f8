"""The runtime context every service receives: settings, state database and warehouse."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from siyu.config import Settings
from siyu.stores.state.db import make_engine, migrate, session_factory

if TYPE_CHECKING:  # the warehouse stack (DuckDB, Ibis) loads when a Context opens one, not in public workers
    from siyu.stores.warehouse import Warehouse


@dataclass
class Context:
    """Open stores for one process. Create with ``Context.open(settings)``; close when done."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    warehouse: Warehouse
    extras: dict[str, Any] = field(default_factory=dict)  # per-process singletons (ingest writer, limiter)

    @classmethod
    def open(cls, settings: Settings | None = None, read_only_warehouse: bool = False) -> Context:
        """Open (and migrate) the state database and the warehouse named by the settings.

        ``read_only_warehouse``: for extra worker processes (``siyu worker``) — DuckDB lets several processes
        read a file only when none writes it; warehouse writes are then left to a writing process."""
        settings = settings or Settings.from_env()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings.state_url)
        migrate(engine)
        from siyu.stores.warehouse import Warehouse

        wh = Warehouse(settings.warehouse_file, read_only=read_only_warehouse)
        ctx = cls(settings, engine, session_factory(engine), wh)
        unloaded = any((settings.data_dir / "ingest-log").glob("*.arrows"))  # acknowledged events a crash left
        if unloaded and not read_only_warehouse:
            from siyu.services.ingest import recover_log

            recover_log(ctx)
        return ctx

    @classmethod
    def state_only(cls, settings: Settings, stand_in: object) -> Context:
        """A Context over the state DB only (no migration: the warehouse process or ``siyu migrate`` does that);
        ``stand_in`` takes the warehouse's place (it refuses every use) and never loads the ingest log."""
        settings = dataclasses.replace(settings, ingest_loader=False)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings.state_url)
        return cls(settings, engine, session_factory(engine), cast("Warehouse", stand_in))

    def close(self) -> None:
        for extra in list(self.extras.values()):
            closer = getattr(extra, "close", None)
            if callable(closer):
                closer()
        self.extras.clear()
        self.warehouse.close()
        self.engine.dispose()
