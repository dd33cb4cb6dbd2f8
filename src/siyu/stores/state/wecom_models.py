"""State tables of the WeCom connector: every accepted callback (decrypted, durable, deduplicated) and every
rejected one (forged, stale or malformed). Schema: Alembic revision 0004_wecom."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.stores.state.models import Base, utcnow


class WeComCallbackRow(Base):
    """One callback as received; ``status``: pending → processing → done | error (processed exactly once)."""

    __tablename__ = "wecom_callbacks"
    __table_args__ = (
        UniqueConstraint("brand_id", "dedupe_key", name="uq_wecom_callbacks_dedupe"),
        Index("ix_wecom_callbacks_status", "brand_id", "status", "id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    brand_id: Mapped[str] = mapped_column(ForeignKey("brands.id"))
    dedupe_key: Mapped[str] = mapped_column(String(400))
    event: Mapped[str] = mapped_column(String(64))
    change_type: Mapped[str] = mapped_column(String(64))
    create_time: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[str] = mapped_column(String(128), default="")
    external_user_id: Mapped[str] = mapped_column(String(128), default="")
    xml: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[str | None] = mapped_column(Text, nullable=True)  # what processing did, or the error
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class WeComRejectionRow(Base):
    """A callback refused (nothing it says was applied): the reason code and detail."""

    __tablename__ = "wecom_rejections"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    brand_id: Mapped[str] = mapped_column(String(64), index=True)
    reason: Mapped[str] = mapped_column(String(32))  # signature | stale | receiveid | padding | duplicate | ...
    detail: Mapped[str] = mapped_column(Text, default="")
    remote: Mapped[str] = mapped_column(String(64), default="")
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
