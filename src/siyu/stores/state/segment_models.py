"""State tables of customer segments (客户分群): the segment and every version of its definition.

A change of definition adds a version row (old versions stay for the audit trail); ``segments.version`` points
at the current one. Membership lives in the warehouse (``segment_members``). Schema: Alembic revision 0002.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.stores.state.models import Base, utcnow


class SegmentRow(Base):
    """A saved segment of one brand; ``archived_at`` set = deleted (kept for history)."""

    __tablename__ = "segments"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    brand_id: Mapped[str] = mapped_column(ForeignKey("brands.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    archived_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    refreshed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    member_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    refresh_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class SegmentVersionRow(Base):
    """One version of a segment's definition (JSON of ``siyu.domain.segment_def``)."""

    __tablename__ = "segment_versions"
    __table_args__ = (UniqueConstraint("segment_id", "version", name="uq_segment_versions_segment_version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    segment_id: Mapped[str] = mapped_column(ForeignKey("segments.id"))
    version: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
