"""The brand's marketing-cap lock, held in the state database so it works across processes (issue 10: several
API/worker processes on one SQLite file or on PostgreSQL).

A claim of daily-cap slots (an outbox marketing message, a WeCom mass send's recipients) runs in one transaction that
first takes this lock, then counts what every channel already holds, then inserts. The lock is a no-op update of the
brand's row: on SQLite it takes the database's write lock (other writers wait, readers do not); on PostgreSQL a row
lock on ``brands`` (other claims of the brand wait; reads and foreign-key checks do not). It is released by the
transaction's commit or rollback, so a killed process never leaves it held.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session


def hold(s: Session, brand_id: str) -> None:
    """Take ``brand_id``'s marketing-cap lock for the rest of ``s``'s transaction (call it first in the
    transaction, before any read the claim depends on)."""
    s.execute(text("UPDATE brands SET name = name WHERE id = :b"), {"b": brand_id})
