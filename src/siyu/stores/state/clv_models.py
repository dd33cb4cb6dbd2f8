"""State table of CLV fits (客户终身价值模型): one row per fit of a brand, with its estimates and how it went.

Per-customer predictions of a brand's latest successful fit live in the warehouse (``clv_predictions``).
Schema: Alembic revision 0005.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from siyu.stores.state.models import Base, utcnow


class ClvFitRow(Base):
    """A fit of a purchase-count model (BG/NBD, MBG/NBD, Pareto/NBD) and Gamma-Gamma to a brand's orders.

    ``status``: running → done | failed; ``progress`` is the current stage while running, ``error`` the reason a
    fit failed.
    """

    __tablename__ = "clv_fits"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    brand_id: Mapped[str] = mapped_column(ForeignKey("brands.id"), index=True)
    model: Mapped[str] = mapped_column(String(32))
    calibration_end: Mapped[date] = mapped_column(Date)
    months: Mapped[int] = mapped_column(Integer, default=12)
    discount_rate: Mapped[float] = mapped_column(Float, default=0.1)
    status: Mapped[str] = mapped_column(String(16), default="running")
    progress: Mapped[str] = mapped_column(String(200), default="")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    se: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    log_likelihood: Mapped[float | None] = mapped_column(Float, nullable=True)
    spend_params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    spend_se: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    spend_log_likelihood: Mapped[float | None] = mapped_column(Float, nullable=True)
    customers: Mapped[int | None] = mapped_column(Integer, nullable=True)
    repeat_customers: Mapped[int | None] = mapped_column(Integer, nullable=True)
    seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
