"""State tables of WeCom operations: mass sends (群发: the send, one task per guide and chunk, one row per
recipient), inheritance (在职/离职继承: the transfer and one row per customer) and segment tag rules (the rule and
the marks it made). Schema: Alembic 0009_wecom_ops."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.stores.state.models import Base, utcnow


class WeComMassSendRow(Base):
    """A 群发 to a segment; ``status`` created → dispatched | partial (some tasks failed)."""

    __tablename__ = "wecom_mass_sends"
    __table_args__ = (UniqueConstraint("brand_id", "idempotency_key", name="uq_wecom_mass_sends_key"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    brand_id: Mapped[str] = mapped_column(ForeignKey("brands.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    segment_id: Mapped[str] = mapped_column(String(64))
    chat_type: Mapped[str] = mapped_column(String(8), default="single")  # single | group
    content: Mapped[str] = mapped_column(Text, default="")
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    idempotency_key: Mapped[str] = mapped_column(String(200))
    cap_per_day: Mapped[int] = mapped_column(Integer, default=1)
    cap_day: Mapped[str] = mapped_column(String(10), default="")
    status: Mapped[str] = mapped_column(String(16), default="created")
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    refreshed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class WeComMassTaskRow(Base):
    """One add_msg_template call: a guide's chunk (≤ 10,000 customers or ≤ 2,000 groups). ``status`` pending →
    created (msgid) | error; ``confirm`` 0 waiting for the guide, 2 confirmed (sent)."""

    __tablename__ = "wecom_mass_tasks"
    __table_args__ = (UniqueConstraint("send_id", "guide_id", "chunk", name="uq_wecom_mass_tasks_chunk"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    send_id: Mapped[str] = mapped_column(ForeignKey("wecom_mass_sends.id"), index=True)
    guide_id: Mapped[str] = mapped_column(String(64))
    userid: Mapped[str] = mapped_column(String(64))
    chunk: Mapped[int] = mapped_column(Integer, default=0)
    targets: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    msgid: Mapped[str] = mapped_column(String(64), default="")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    confirm: Mapped[int] = mapped_column(Integer, default=0)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    stats: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)


class WeComMassRecipientRow(Base):
    """One recipient (customer, or group chat) of a mass send; ``status`` capped | queued | failed (fail_list) |
    sent | not_contact | other_mass | unsent. Rows not capped/failed hold the customer's cap for ``cap_day``."""

    __tablename__ = "wecom_mass_recipients"
    __table_args__ = (
        UniqueConstraint("send_id", "target", name="uq_wecom_mass_recipients_target"),
        Index("ix_wecom_mass_recipients_cap", "brand_id", "cap_day", "customer_id"),
        Index("ix_wecom_mass_recipients_task", "task_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    send_id: Mapped[str] = mapped_column(ForeignKey("wecom_mass_sends.id"))
    brand_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(64), default="")
    target: Mapped[str] = mapped_column(String(128))  # external_userid, or chat_id for group sends
    guide_id: Mapped[str] = mapped_column(String(64), default="")
    task_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cap_day: Mapped[str] = mapped_column(String(10), default="")
    status: Mapped[str] = mapped_column(String(16), default="queued")


class WeComTransferRow(Base):
    """A hand-over of a guide's customers (all or a segment's) to another guide; ``resigned`` = 离职继承."""

    __tablename__ = "wecom_transfers"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    brand_id: Mapped[str] = mapped_column(ForeignKey("brands.id"), index=True)
    handover_guide_id: Mapped[str] = mapped_column(String(64))
    handover_userid: Mapped[str] = mapped_column(String(64))
    takeover_guide_id: Mapped[str] = mapped_column(String(64))
    takeover_userid: Mapped[str] = mapped_column(String(64))
    resigned: Mapped[bool] = mapped_column(Boolean, default=False)
    segment_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    refreshed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class WeComTransferCustomerRow(Base):
    """One customer of a transfer; ``status`` waiting (24 h) | done | refused (customer_refused) | limit
    (customer_limit_exceed) | failed (errcode at request: 40128 twice in 90 days, 40129 in progress, ...)."""

    __tablename__ = "wecom_transfer_customers"
    __table_args__ = (
        UniqueConstraint("transfer_id", "external_userid", name="uq_wecom_transfer_customers"),
        Index("ix_wecom_transfer_customers_ext", "brand_id", "external_userid", "status"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    transfer_id: Mapped[str] = mapped_column(ForeignKey("wecom_transfers.id"))
    brand_id: Mapped[str] = mapped_column(String(64))
    external_userid: Mapped[str] = mapped_column(String(128))
    customer_id: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(16), default="waiting")
    errcode: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str] = mapped_column(Text, default="")
    takeover_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class WeComTagRuleRow(Base):
    """Segment → corp tag: members get the tag marked, leavers get it removed, on every refresh."""

    __tablename__ = "wecom_tag_rules"
    __table_args__ = (UniqueConstraint("brand_id", "segment_id", "tag_id", name="uq_wecom_tag_rules"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    brand_id: Mapped[str] = mapped_column(ForeignKey("brands.id"), index=True)
    segment_id: Mapped[str] = mapped_column(String(64))
    tag_id: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    refreshed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class WeComTagMarkRow(Base):
    """A tag a rule marked on a (member, customer) relation in WeCom (removed again when the customer leaves)."""

    __tablename__ = "wecom_tag_marks"
    __table_args__ = (UniqueConstraint("rule_id", "userid", "external_userid", name="uq_wecom_tag_marks"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("wecom_tag_rules.id"), index=True)
    userid: Mapped[str] = mapped_column(String(64))
    external_userid: Mapped[str] = mapped_column(String(128))
    customer_id: Mapped[str] = mapped_column(String(64), default="")
    marked_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
