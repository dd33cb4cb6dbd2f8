"""Alembic environment: the engine is handed in by siyu.stores.state.db.migrate."""

from __future__ import annotations

from alembic import context

from siyu.stores.state.models import Base

config = context.config
engine = config.attributes.get("engine")
if engine is None:  # alembic CLI use: SIYU_DATABASE_URL or the default SQLite file
    from siyu.config import Settings
    from siyu.stores.state.db import make_engine

    engine = make_engine(Settings.from_env().state_url)

with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
