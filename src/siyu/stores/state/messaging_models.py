"""State tables of messaging: the durable outbox (SMS, email, webhooks) and per-brand provider settings.
Schema: Alembic revision 0006_messaging."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.stores.state.models import Base, utcnow


class OutboxRow(Base):
    """One message to send. ``status``: queued → sending → sent, or failed (retry due at ``next_attempt_at``)
    → … → dead (final error or retries used up: the dead-letter list; ``resend`` queues it again).

    ``(brand_id, idempotency_key)`` is unique, so a repeated request returns the first message instead of a new one;
    ``(brand_id, cap_key, cap_day, cap_slot)`` is unique, so the daily marketing cap holds under concurrency."""

    __tablename__ = "messaging_outbox"
    __table_args__ = (
        UniqueConstraint("brand_id", "idempotency_key", name="uq_messaging_outbox_idempotency"),
        UniqueConstraint("brand_id", "cap_key", "cap_day", "cap_slot", name="uq_messaging_outbox_cap"),
        Index("ix_messaging_outbox_status", "status", "next_attempt_at"),
        Index("ix_messaging_outbox_brand", "brand_id", "created_at"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    brand_id: Mapped[str] = mapped_column(ForeignKey("brands.id"))
    channel: Mapped[str] = mapped_column(String(16))  # sms | email | webhook
    purpose: Mapped[str] = mapped_column(String(16))  # marketing | transactional
    recipient: Mapped[str] = mapped_column(String(2000))  # E.164 phone, email address, or webhook URL
    customer_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    template: Mapped[str] = mapped_column(String(200), default="")  # SMS template code / email subject / topic
    content: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # params / {text, html} / payload
    idempotency_key: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(100), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)  # the meaning: what happened, what to do
    vendor_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    cap_key: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    cap_day: Mapped[str | None] = mapped_column(String(10), nullable=True)
    cap_slot: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class ProviderRow(Base):
    """A brand's settings for one channel's provider: public ``config`` and ``secrets`` (never returned)."""

    __tablename__ = "messaging_providers"
    brand_id: Mapped[str] = mapped_column(ForeignKey("brands.id"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    secrets: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_by: Mapped[str] = mapped_column(String(100), default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
