"""The runtime context every service receives: settings, state database and warehouse."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from siyu.config import Settings
from siyu.stores.state.db import make_engine, migrate, session_factory
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
    def open(cls, settings: Settings | None = None) -> Context:
        """Open (and migrate) the state database and the warehouse named by the settings."""
        settings = settings or Settings.from_env()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings.state_url)
        migrate(engine)
        ctx = cls(settings, engine, session_factory(engine), Warehouse(settings.warehouse_file))
        if any((settings.data_dir / "ingest-log").glob("*.arrows")):  # acknowledged events a crash left unloaded
            from siyu.services.ingest import recover_log

            recover_log(ctx)
        return ctx

    def close(self) -> None:
        for extra in list(self.extras.values()):
            closer = getattr(extra, "close", None)
            if callable(closer):
                closer()
        self.extras.clear()
        self.warehouse.close()
        self.engine.dispose()
