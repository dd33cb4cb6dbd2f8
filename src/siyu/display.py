"""How values are shown to people (CLI and console alike): one place for money, numbers, missing values, times.

- missing (None, NaN, pandas NA) → ``—``;
- money (a field named like ``gmv``, ``amount``, ``*_cost`` …, or ``money()``) → ``¥236,354.90``;
- other floats → at most 4 decimals, no float noise (``5261.8``, ``0.1234``); integers and text as they are;
- datetimes to the minute, dates as ISO.
"""

from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal
from typing import Any

from siyu.domain.brand_time import as_naive_utc, utc_to_local

MISSING = "—"
MONEY_FIELDS = frozenset(
    {
        "gmv",
        "gmv_prev",
        "gmv_target",
        "amount",
        "aov",
        "revenue",
        "spend",
        "cost",
        "monetary",
        "clv",
        "cac",
        "budget",
        "budget_spent",
        "unit_cost",
        "reward_cost",
        "order_value",
        "expected_spend",
    }
)
MONEY_SUFFIXES = ("_gmv", "_amount", "_revenue", "_spend", "_cost")


def is_missing(value: Any) -> bool:
    """None, NaN or pandas' NA/NaT."""
    if value is None:
        return True
    if isinstance(value, float | Decimal):
        return bool(value != value)  # NaN is not equal to itself
    try:
        import pandas as pd

        return bool(pd.isna(value)) if not isinstance(value, list | tuple | dict | set) else False
    except (TypeError, ValueError):
        return False


def is_money_field(name: str | None) -> bool:
    """True for the fields that hold money (``gmv``, ``amount``, ``reward_cost`` …)."""
    return bool(name) and (name in MONEY_FIELDS or str(name).endswith(MONEY_SUFFIXES))


def money(value: Any) -> str:
    """``¥236,354.90`` (two decimals, thousands separators); ``—`` when missing."""
    if is_missing(value):
        return MISSING
    return f"¥{float(value):,.2f}"


def number(value: Any, decimals: int = 4) -> str:
    """A number without float noise: integers as they are, others rounded to ``decimals`` with trailing zeros
    dropped (``5261.8``); ``—`` when missing."""
    if is_missing(value):
        return MISSING
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    x = float(value)
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    text = f"{round(x, decimals):.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def money_cents(value: Any) -> float | None:
    """Money rounded to cents for API answers (None stays None, NaN becomes None)."""
    return None if is_missing(value) else round(float(value), 2)


def local_clock(value: datetime) -> datetime:
    """A stored time (naive UTC, or aware) as the brand's local wall clock, naive."""
    return utc_to_local(as_naive_utc(value))


def local_text(at: datetime | str | None) -> str:
    """A stored time (naive UTC datetime, aware datetime, or ISO text of either) as Beijing ``YYYY-MM-DD HH:MM``;
    ``—`` when missing."""
    if at is None or at == "":
        return MISSING
    moment = datetime.fromisoformat(at) if isinstance(at, str) else at
    return local_clock(moment).isoformat(sep=" ", timespec="minutes")


def is_time_field(field: str | None) -> bool:
    """Fields that hold a stored time (``created_at``, ``due_at``, ``at`` …): the API gives them as ISO text."""
    return field is not None and (field == "at" or field.endswith("_at"))


def display_value(value: Any, field: str | None = None) -> str:
    """Text for a table cell or card: ``—`` when missing, money for money ``field``s, numbers without float
    noise, datetimes — and the ISO text of a time ``field`` — to the minute in the brand's local time (stored
    times are naive UTC), dates as ISO, anything else as str()."""
    if is_missing(value):
        return MISSING
    if isinstance(value, datetime):
        return local_text(value)
    if isinstance(value, str) and is_time_field(field) and "T" in value:
        try:
            return local_text(value)
        except ValueError:  # not ISO after all: shown as it is
            return value
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    if isinstance(value, bool | str):
        return str(value)
    if isinstance(value, int | float | Decimal) or type(value).__module__ == "numpy":
        if is_money_field(field):
            return money(value)
        try:
            return number(value.item() if hasattr(value, "item") else value)
        except (TypeError, ValueError):
            return str(value)
    return str(value)
