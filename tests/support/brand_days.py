"""Brand days for the tests' independent (pandas / plain Python) computations, written apart from
``siyu.domain.brand_time``: stored times are naive UTC; the brand's day is Beijing's (UTC+8, no daylight saving)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd

OFFSET = timedelta(hours=8)


def day_start(d: date) -> pd.Timestamp:
    """Beijing midnight opening day ``d``, as a naive UTC timestamp (compare stored times with it)."""
    return pd.Timestamp(datetime(d.year, d.month, d.day)) - pd.Timedelta(OFFSET)


def day_end(d: date) -> pd.Timestamp:
    """Beijing midnight closing day ``d`` (opening the next), as a naive UTC timestamp."""
    return day_start(d + timedelta(days=1))


def local(times: pd.Series) -> pd.Series:
    """Stored (naive UTC) times as Beijing wall clocks: take ``.dt.date`` / ``.dt.normalize()`` / months of this."""
    return pd.to_datetime(times) + pd.Timedelta(OFFSET)


def local_dates(times: pd.Series) -> pd.Series:
    """The Beijing calendar day (``datetime.date``) of each stored time."""
    return local(times).dt.date
