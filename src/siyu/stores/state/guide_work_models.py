"""State tables of the guide workspace: follow-ups (跟进记录) and sales stages, daily reminder digests, Moments
(朋友圈) tasks and their per-guide completion, the customer pool (公海) with its move log, and the operator's
per-guide KPI targets. Schema: Alembic 0013_guide_work, 0017_guide_behavior.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from siyu.stores.state.models import Base, utcnow


class GuideWorkSettingsRow(Base):
    """A brand's guide-workspace settings: sales stages, pool rules, Moments posting windows, round-robin cursor."""

    __tablename__ = "guide_work_settings"
    brand_id: Mapped[str] = mapped_column(ForeignKey("brands.id"), primary_key=True)
    stages: Mapped[list[str]] = mapped_column(JSON, default=list)
    claim_limit: Mapped[int] = mapped_column(Integer, default=20)
    return_days: Mapped[int] = mapped_column(Integer, default=7)
    moment_windows: Mapped[list[str]] = mapped_column(JSON, default=list)
    rr_cursor: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class FollowupRow(Base):
    """One follow-up (跟进记录); ``next_at`` is the next follow-up date, its reminder ``open`` until a later
    follow-up of the same customer (or the guide) closes it."""

    __tablename__ = "followups"
    __table_args__ = (
        Index("ix_followups_customer", "brand_id", "customer_id", "created_at"),
        Index("ix_followups_reminders", "brand_id", "guide_id", "reminder", "next_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    brand_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(128))
    guide_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    kind: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text, default="")
    stage: Mapped[str | None] = mapped_column(String(64), nullable=True)
    next_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    reminder: Mapped[str] = mapped_column(String(8), default="none")  # none | open | closed
    closed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class CustomerStageRow(Base):
    """A customer's current sales stage (one of the brand's configured stages)."""

    __tablename__ = "customer_stages"
    brand_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    stage: Mapped[str] = mapped_column(String(64))
    updated_by: Mapped[str] = mapped_column(String(100), default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class FollowupDigestRow(Base):
    """The daily reminder of one guide on one brand-local day: follow-ups due that day and overdue."""

    __tablename__ = "followup_digests"
    brand_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    guide_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    due: Mapped[int] = mapped_column(Integer, default=0)
    overdue: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class MomentTaskRow(Base):
    """A Moments (朋友圈) task published through ``add_moment_task``: ``status`` creating (jobid known) | created
    (moment_id known) | failed."""

    __tablename__ = "moment_tasks"
    __table_args__ = (Index("ix_moment_tasks_brand", "brand_id", "created_at"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    brand_id: Mapped[str] = mapped_column(ForeignKey("brands.id"))
    title: Mapped[str] = mapped_column(String(200))
    content: Mapped[str] = mapped_column(Text, default="")
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    tag_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    segment_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    windows: Mapped[list[str]] = mapped_column(JSON, default=list)
    jobid: Mapped[str | None] = mapped_column(String(128), nullable=True)
    moment_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="creating")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    invalid: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    checked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class MomentTaskGuideRow(Base):
    """One guide of a Moments task: ``status`` pending | done (WeCom's publish_status 1) | invalid."""

    __tablename__ = "moment_task_guides"
    __table_args__ = (Index("ix_moment_task_guides_guide", "brand_id", "guide_id", "status"),)
    task_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    guide_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    brand_id: Mapped[str] = mapped_column(String(64))
    userid: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    done_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class PoolLeadRow(Base):
    """A lead of the customer pool (公海): ``owner_guide_id`` None while it sits in the pool."""

    __tablename__ = "pool_leads"
    __table_args__ = (Index("ix_pool_leads_owner", "brand_id", "owner_guide_id"),)
    brand_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    owner_guide_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    source: Mapped[str] = mapped_column(String(32), default="import")
    store_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    region: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # where the lead came from, for attribution: the import batch id, form id or campaign id (0017)
    source_ref: Mapped[str | None] = mapped_column(String(128), nullable=True)
    entered_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    assigned_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    worked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class PoolMoveRow(Base):
    """Every move of a lead: ``action`` add | assign | claim | release | return; who, when and why."""

    __tablename__ = "pool_moves"
    __table_args__ = (
        Index("ix_pool_moves_customer", "brand_id", "customer_id", "id"),
        Index("ix_pool_moves_actor", "brand_id", "to_guide_id", "action", "at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    brand_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(16))
    from_guide_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    to_guide_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    rule: Mapped[str | None] = mapped_column(String(32), nullable=True)
    actor: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class GuideTargetRow(Base):
    """The operator's target of one KPI for one guide and period (``YYYY-MM``)."""

    __tablename__ = "guide_targets"
    brand_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    guide_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    metric: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[float] = mapped_column(Float)
    set_by: Mapped[str] = mapped_column(String(100), default="")
    set_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class GuideBehaviorDayRow(Base):
    """WeCom's 联系客户统计 (``get_user_behavior_data``) of one guide and brand-local day, as WeCom answered it
    (``reply_percentage`` and ``avg_reply_time`` None when WeCom left them out: no chats / no replies). 0017."""

    __tablename__ = "guide_behavior_days"
    brand_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    guide_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    wecom_userid: Mapped[str] = mapped_column(String(64))
    chat_cnt: Mapped[int] = mapped_column(Integer, default=0)
    message_cnt: Mapped[int] = mapped_column(Integer, default=0)
    reply_percentage: Mapped[float | None] = mapped_column(Float, nullable=True)
    avg_reply_time: Mapped[float | None] = mapped_column(Float, nullable=True)
    negative_feedback_cnt: Mapped[int] = mapped_column(Integer, default=0)
    new_apply_cnt: Mapped[int] = mapped_column(Integer, default=0)
    new_contact_cnt: Mapped[int] = mapped_column(Integer, default=0)
    synced_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
