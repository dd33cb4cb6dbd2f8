"""State table of the audit log: one row per sensitive action (who, what, on what, when). Schema: Alembic
0015_audit_log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from siyu.stores.state.models import Base, utcnow


class AuditRow(Base):
    """A sensitive action: ``action`` (export, oneid.split, transfer.start, ...), its ``target`` and ``detail``."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_brand_at", "brand_id", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    brand_id: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(128))  # username, or "cli" / "system"
    actor_role: Mapped[str] = mapped_column(String(16), default="")
    action: Mapped[str] = mapped_column(String(48))
    target: Mapped[str] = mapped_column(String(200), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
