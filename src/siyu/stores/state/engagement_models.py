"""State tables of rewards and engagement: rewards with stock and budget, their code pools, the grants (one row
per reward issued, keyed by an idempotency key), the points accounts and ledger (lots with FIFO expiry),
engagement activities (lottery / check-in / quiz), lottery draws, check-ins, quiz attempts and member tiers.
Schema: Alembic 0011_engagement."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.stores.state.models import Base, utcnow


class RewardRow(Base):
    """A reward: ``kind`` coupon | points | physical | virtual; ``config`` the kind's settings (see
    ``siyu.domain.rewards``); ``stock_left`` None = unlimited; ``budget`` None = no cost cap; ``status`` active |
    inactive | deleted; ``valid_until`` after which it can no longer be granted."""

    __tablename__ = "rewards"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    brand_id: Mapped[str] = mapped_column(ForeignKey("brands.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    unit_cost: Mapped[float] = mapped_column(Float, default=0.0)
    stock_total: Mapped[int | None] = mapped_column(Integer, nullable=True)
    stock_left: Mapped[int | None] = mapped_column(Integer, nullable=True)
    budget: Mapped[float | None] = mapped_column(Float, nullable=True)
    cost_spent: Mapped[float] = mapped_column(Float, default=0.0)
    granted: Mapped[int] = mapped_column(Integer, default=0)
    return_stock: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    valid_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class RewardCodeRow(Base):
    """One code of a reward's code list (coupon or virtual goods); ``grant_id`` set once it is handed out."""

    __tablename__ = "reward_codes"
    __table_args__ = (
        UniqueConstraint("reward_id", "code", name="uq_reward_codes_code"),
        Index("ix_reward_codes_free", "reward_id", "grant_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    brand_id: Mapped[str] = mapped_column(String(64))
    reward_id: Mapped[str] = mapped_column(ForeignKey("rewards.id"))
    code: Mapped[str] = mapped_column(String(200))
    grant_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class RewardGrantRow(Base):
    """A reward issued to a customer. ``status``: issued (coupon / points / virtual) | awaiting_address | to_ship
    | shipped (physical) | redeemed (coupon used) | clawed_back. ``source``/``source_ref`` say why (campaign,
    lottery, check-in, manual ...)."""

    __tablename__ = "reward_grants"
    __table_args__ = (
        UniqueConstraint("brand_id", "idempotency_key", name="uq_reward_grants_key"),
        Index("ix_reward_grants_source", "brand_id", "source", "source_ref"),
        Index("ix_reward_grants_customer", "brand_id", "customer_id"),
        Index("ix_reward_grants_reward", "reward_id", "status"),
        Index("ix_reward_grants_code", "brand_id", "code"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    brand_id: Mapped[str] = mapped_column(String(64))
    reward_id: Mapped[str] = mapped_column(ForeignKey("rewards.id"))
    kind: Mapped[str] = mapped_column(String(16))
    customer_id: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(64))
    source_ref: Mapped[str] = mapped_column(String(200), default="")
    idempotency_key: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    code: Mapped[str] = mapped_column(String(200), default="")
    value: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    address: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    shipping_carrier: Mapped[str] = mapped_column(String(64), default="")
    tracking_no: Mapped[str] = mapped_column(String(64), default="")
    order_id: Mapped[str] = mapped_column(String(128), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    redeemed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    shipped_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    clawed_back_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class PointsAccountRow(Base):
    """A customer's points balance (kept equal to the sum of the ledger in the same transaction; the
    conditional update on it is what keeps concurrent spends from going negative)."""

    __tablename__ = "points_accounts"
    brand_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    balance: Mapped[int] = mapped_column(Integer, default=0)
    earned_total: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class PointsEntryRow(Base):
    """One ledger entry: ``kind`` earn (a lot: ``remaining`` left of it, ``expires_at``) | spend | expire |
    reverse; ``delta`` signed; ``lots`` [{lot, points}] the lots a debit consumed (FIFO); ``source`` + ``ref``
    say why; ``key`` (optional) makes a write idempotent."""

    __tablename__ = "points_ledger"
    __table_args__ = (
        UniqueConstraint("brand_id", "key", name="uq_points_ledger_key"),
        Index("ix_points_ledger_customer", "brand_id", "customer_id", "id"),
        Index("ix_points_ledger_lots", "brand_id", "customer_id", "remaining", "expires_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    brand_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(10))
    delta: Mapped[int] = mapped_column(Integer)
    remaining: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    lots: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    source: Mapped[str] = mapped_column(String(64))
    ref: Mapped[str] = mapped_column(String(200), default="")
    key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class EngagementActivityRow(Base):
    """A lottery / check-in / quiz (``kind``) with its ``config`` (``siyu.domain.engagement``); ``status``
    active | paused | ended."""

    __tablename__ = "engagement_activities"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    brand_id: Mapped[str] = mapped_column(ForeignKey("brands.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="active")
    starts_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    ends_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class LotteryDrawRow(Base):
    """One draw; ``attempt`` 1..limit per person per local day (the unique key enforces the daily limit under
    concurrency); ``prize`` the prize key or '' for no prize; ``outcome`` won | no_prize | out_of_stock."""

    __tablename__ = "lottery_draws"
    __table_args__ = (
        UniqueConstraint("activity_id", "customer_id", "day", "attempt", name="uq_lottery_draws_attempt"),
        Index("ix_lottery_draws_activity", "activity_id", "prize"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    brand_id: Mapped[str] = mapped_column(String(64))
    activity_id: Mapped[str] = mapped_column(ForeignKey("engagement_activities.id"))
    customer_id: Mapped[str] = mapped_column(String(128))
    day: Mapped[str] = mapped_column(String(10))
    attempt: Mapped[int] = mapped_column(Integer)
    prize: Mapped[str] = mapped_column(String(64), default="")
    outcome: Mapped[str] = mapped_column(String(16))
    grant_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class CheckinRow(Base):
    """One check-in (签到) on a local day; ``streak`` the consecutive-day count it reached; ``makeup`` True when
    a make-up card filled a missed day; ``grants`` the reward grant ids it earned."""

    __tablename__ = "checkins"
    __table_args__ = (UniqueConstraint("activity_id", "customer_id", "day", name="uq_checkins_day"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    brand_id: Mapped[str] = mapped_column(String(64))
    activity_id: Mapped[str] = mapped_column(ForeignKey("engagement_activities.id"))
    customer_id: Mapped[str] = mapped_column(String(128))
    day: Mapped[str] = mapped_column(String(10))
    streak: Mapped[int] = mapped_column(Integer)
    makeup: Mapped[bool] = mapped_column(Boolean, default=False)
    grants: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class QuizAttemptRow(Base):
    """One quiz attempt (答题领积分): one per person per quiz per local day (unique key)."""

    __tablename__ = "quiz_attempts"
    __table_args__ = (UniqueConstraint("activity_id", "customer_id", "day", name="uq_quiz_attempts_day"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    brand_id: Mapped[str] = mapped_column(String(64))
    activity_id: Mapped[str] = mapped_column(ForeignKey("engagement_activities.id"))
    customer_id: Mapped[str] = mapped_column(String(128))
    day: Mapped[str] = mapped_column(String(10))
    answers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    correct: Mapped[int] = mapped_column(Integer)
    points: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class MemberTierRow(Base):
    """A customer's member tier now, the figures it was computed from and the tier before the last change."""

    __tablename__ = "member_tiers"
    brand_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    tier: Mapped[str] = mapped_column(String(64))
    previous: Mapped[str] = mapped_column(String(64), default="")
    points_basis: Mapped[int] = mapped_column(Integer, default=0)
    spend_basis: Mapped[float] = mapped_column(Float, default=0.0)
    changed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    computed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class TierSchemeRow(Base):
    """The brand's member tier scheme (``siyu.domain.engagement.tiers.TierScheme`` as JSON)."""

    __tablename__ = "tier_schemes"
    brand_id: Mapped[str] = mapped_column(ForeignKey("brands.id"), primary_key=True)
    scheme: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
