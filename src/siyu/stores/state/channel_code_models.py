"""State tables of channel codes (渠道活码): the codes (guides, caps, fallback, state, WeCom config_id, welcome,
group rules) and one row per add they brought (the onboarding log: welcome, tag and invite outcomes, keyed by the
callback so each add is handled once). Schema: Alembic 0008_channel_codes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.stores.state.models import Base, utcnow


class ChannelCodeRow(Base):
    """A 联系我 code: ``guides`` [{guide_id, userid, cap}], ``users`` = the WeCom userids it shows now;
    ``status`` active | deleted."""

    __tablename__ = "channel_codes"
    __table_args__ = (UniqueConstraint("brand_id", "state", name="uq_channel_codes_state"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    brand_id: Mapped[str] = mapped_column(ForeignKey("brands.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    channel_id: Mapped[str] = mapped_column(String(64))
    campaign: Mapped[str] = mapped_column(String(64), default="")
    guides: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    fallback: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    state: Mapped[str] = mapped_column(String(30))
    config_id: Mapped[str] = mapped_column(String(64), default="")
    qr_code: Mapped[str] = mapped_column(String(500), default="")
    users: Mapped[list[str]] = mapped_column(JSON, default=list)
    rotation: Mapped[str] = mapped_column(String(16), default="")
    welcome: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    tag_channel: Mapped[int] = mapped_column(Integer, default=1)
    tag_id: Mapped[str] = mapped_column(String(64), default="")
    group_rules: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    join_ways: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ChannelCodeAddRow(Base):
    """One add a code brought (from its callback ``ref``): who, when, and what onboarding did — ``welcome``
    pending | sending | sent | delivered_before | expired | failed | none, ``tag`` and ``invite`` likewise."""

    __tablename__ = "channel_code_adds"
    __table_args__ = (
        UniqueConstraint("brand_id", "ref", name="uq_channel_code_adds_ref"),
        Index("ix_channel_code_adds_code_day", "code_id", "day"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    brand_id: Mapped[str] = mapped_column(String(64))
    code_id: Mapped[int] = mapped_column(ForeignKey("channel_codes.id"))
    ref: Mapped[str] = mapped_column(String(64))
    guide_id: Mapped[str] = mapped_column(String(64))
    userid: Mapped[str] = mapped_column(String(128))
    external_userid: Mapped[str] = mapped_column(String(128))
    create_time: Mapped[int] = mapped_column(Integer)
    day: Mapped[str] = mapped_column(String(10))
    welcome: Mapped[str] = mapped_column(String(20), default="pending")
    welcome_detail: Mapped[str] = mapped_column(Text, default="")
    welcome_text: Mapped[str] = mapped_column(Text, default="")
    tag: Mapped[str] = mapped_column(String(20), default="pending")
    invite: Mapped[str] = mapped_column(String(20), default="pending")
    invite_detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
