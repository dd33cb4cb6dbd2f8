"""State tables of journeys (SOP / 客户旅程): definitions with versions, per-customer entries, the step log
(idempotency keys), side effects keyed by step, staff tasks and the suppression list. Schema: Alembic 0007.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.stores.state.models import Base, utcnow


class JourneyRow(Base):
    """A journey: ``status`` draft | active | paused | stopped; ``published_version`` is what new entries run."""

    __tablename__ = "journeys"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    brand_id: Mapped[str] = mapped_column(ForeignKey("brands.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="draft")
    version: Mapped[int] = mapped_column(Integer, default=1)
    published_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    published_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    cursor: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class JourneyVersionRow(Base):
    __tablename__ = "journey_versions"
    __table_args__ = (UniqueConstraint("journey_id", "version", name="uq_journey_versions_journey_version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    journey_id: Mapped[str] = mapped_column(ForeignKey("journeys.id"))
    version: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class JourneyEntryRow(Base):
    """One customer's stay in a journey (on the version it entered with): where it is and when it wakes."""

    __tablename__ = "journey_entries"
    __table_args__ = (
        UniqueConstraint("journey_id", "customer_id", "dedup_key", name="uq_journey_entries_dedup"),
        Index("ix_journey_entries_due", "status", "wake_at"),
        Index("ix_journey_entries_customer", "journey_id", "customer_id"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    brand_id: Mapped[str] = mapped_column(String(64))
    journey_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    customer_id: Mapped[str] = mapped_column(String(128))
    dedup_key: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | exited
    node_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer, default=0)
    wake_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    waiting_since: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    arm: Mapped[str | None] = mapped_column(String(140), nullable=True)
    entered_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    exited_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    exit_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    goal_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    goal_value: Mapped[float | None] = mapped_column(Float, nullable=True)


class JourneyStepRow(Base):
    """A step run: the idempotency key (entry, node, attempt) written in the transaction that moves the entry."""

    __tablename__ = "journey_steps"
    __table_args__ = (Index("ix_journey_steps_journey", "journey_id", "node_id"),)
    entry_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    node_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer, primary_key=True)
    journey_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    branch: Mapped[str] = mapped_column(String(64), default="")
    outcome: Mapped[str] = mapped_column(String(32), default="ok")
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class JourneyEffectRow(Base):
    """A side effect of a step, keyed by the step's idempotency key; delivered after the step commits."""

    __tablename__ = "journey_effects"
    __table_args__ = (
        Index("ix_journey_effects_status", "status"),
        Index("ix_journey_effects_customer", "brand_id", "customer_id", "created_at"),
    )
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    brand_id: Mapped[str] = mapped_column(String(64))
    journey_id: Mapped[str] = mapped_column(String(64))
    entry_id: Mapped[str] = mapped_column(String(40))
    node_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str | None] = mapped_column(String(32), nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | done | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class JourneyTaskRow(Base):
    """A staff task (导购任务) for the customer's guide; ``id`` is the step's idempotency key."""

    __tablename__ = "journey_tasks"
    __table_args__ = (Index("ix_journey_tasks_guide", "brand_id", "guide_id", "status"),)
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    brand_id: Mapped[str] = mapped_column(String(64))
    journey_id: Mapped[str] = mapped_column(String(64))
    entry_id: Mapped[str] = mapped_column(String(40))
    node_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(128))
    guide_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    kind: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(200))
    script: Mapped[str] = mapped_column(Text, default="")
    due_at: Mapped[datetime] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | done | skipped
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    done_by: Mapped[str | None] = mapped_column(String(100), nullable=True)


class JourneySuppressionRow(Base):
    """A customer who must not be contacted on ``channel`` ('*' = any channel): unsubscribes, complaints."""

    __tablename__ = "journey_suppressions"
    brand_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
