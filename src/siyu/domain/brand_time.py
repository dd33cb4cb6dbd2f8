"""Brand time: instants are kept as naive UTC everywhere; days, months and periods are the brand's local ones.

Every stored time (events, orders, WeCom relations, the state database) is a naive UTC wall clock. People mean
their own calendar when they say "orders on 1 May" or "this month", so every day bucket and every period boundary
is the brand's local day: Asia/Shanghai, a fixed UTC+8 (China has kept no daylight saving time since 1991, so
the fixed offset is exact for every date a brand's data holds and keeps Ibis expressions engine-neutral).

Import files carry local wall clocks (what a brand's spreadsheet shows); ``local_to_utc`` turns them into
instants. A date with no time of day means local midnight.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

DEFAULT_TIMEZONE = "Asia/Shanghai"
UTC_OFFSET = timedelta(hours=8)  # the brand's local time minus UTC


def as_naive_utc(at: datetime) -> datetime:
    """A stored-style naive UTC instant: an aware time converted, a naive one taken as UTC already."""
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at


def local_to_utc(local: datetime) -> datetime:
    """The naive UTC instant of a naive brand-local wall clock."""
    return local - UTC_OFFSET


def utc_to_local(instant: datetime) -> datetime:
    """The brand-local wall clock of a naive UTC instant."""
    return instant + UTC_OFFSET


def local_day(instant: datetime) -> date:
    """The brand-local calendar day a naive UTC instant falls on."""
    return utc_to_local(instant).date()


def day_start_utc(day: date) -> datetime:
    """Local midnight opening ``day``, as naive UTC (the first instant of that brand day)."""
    return local_to_utc(datetime.combine(day, time(0)))


def day_end_utc(day: date) -> datetime:
    """Local midnight closing ``day`` (the opening of the next day), as naive UTC."""
    return day_start_utc(day + timedelta(days=1))


def brand_today() -> date:
    """Today in the brand's calendar (a server on UTC is still on yesterday until 08:00 Beijing time)."""
    return local_day(datetime.now(UTC).replace(tzinfo=None))
