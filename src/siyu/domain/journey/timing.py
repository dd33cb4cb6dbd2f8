"""Pure time and assignment rules of the journey engine: wake-up times, quiet hours, arm assignment.

Times are naive UTC (as stored); local rules (time of day, quiet hours, dates) use the journey's time zone.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from siyu.domain.journey.definition import ExperimentNode, QuietHours, SplitNode, WaitNode


def _local(now: datetime, tz: ZoneInfo) -> datetime:
    return now.replace(tzinfo=UTC).astimezone(tz)


def _utc(local: datetime) -> datetime:
    return local.astimezone(UTC).replace(tzinfo=None)


def _hm(text: str) -> time:
    h, m = text.split(":")
    return time(int(h), int(m))


def next_local_time(now: datetime, tz: ZoneInfo, at: time) -> datetime:
    """The first instant ≥ ``now`` (naive UTC) whose local clock reads ``at``."""
    loc = _local(now, tz)
    cand = loc.replace(hour=at.hour, minute=at.minute, second=0, microsecond=0)
    if cand < loc:
        cand = (cand + timedelta(days=1)).replace(hour=at.hour, minute=at.minute)
    return _utc(cand)


def local_day(now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[local midnight, next local midnight) of ``now``'s local day (naive UTC; 23 or 25 hours long across a
    daylight-saving change): daily caps count inside it."""
    today = _local(now, tz).date()
    start = datetime.combine(today, time(0), tzinfo=tz)
    return _utc(start), _utc(datetime.combine(today + timedelta(days=1), time(0), tzinfo=tz))


def in_window(t: time, start: time, end: time) -> bool:
    """Whether clock time ``t`` is in [start, end) (the window may span midnight)."""
    if start <= end:
        return start <= t < end
    return t >= start or t < end


def wait_until(node: WaitNode, now: datetime, tz: ZoneInfo, active_hours: tuple[str, str] | None = None) -> datetime:
    """When a customer arriving at a wait node now goes on (naive UTC).

    time_of_day with ``use_active_hours`` and known active hours [start, end): ``at`` if it falls inside them,
    else the start of the customer's active hours.
    """
    if node.mode == "duration":
        assert node.minutes is not None
        return now + timedelta(minutes=node.minutes)
    if node.mode == "time_of_day":
        assert node.at is not None
        at = _hm(node.at)
        if node.use_active_hours and active_hours:
            start, end = _hm(active_hours[0]), _hm(active_hours[1])
            if not in_window(at, start, end):
                at = start
        due = next_local_time(now, tz, at)
        while node.weekdays and _local(due, tz).isoweekday() not in node.weekdays:
            due = next_local_time(due + timedelta(minutes=1), tz, at)  # the same clock time, the next day
        return due
    assert node.until is not None
    until = node.until
    if until.tzinfo is None:
        until = until.replace(tzinfo=tz)
    return max(now, _utc(until))


def quiet_release(now: datetime, tz: ZoneInfo, quiet: QuietHours | None) -> datetime | None:
    """None when ``now`` is outside quiet hours, else the instant they end (naive UTC)."""
    if quiet is None:
        return None
    start, end = _hm(quiet.start), _hm(quiet.end)
    loc = _local(now, tz)
    if not in_window(loc.time(), start, end):
        return None
    return next_local_time(now, tz, end)


def unit_hash(*parts: str) -> float:
    """A uniform number in [0, 1) fixed by the parts (same entry and node → same draw, on every retry)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def choose_arm(node: SplitNode | ExperimentNode, entry_id: str) -> str:
    """The branch of a split or experiment for an entry: holdout first (experiments), then arms by weight."""
    u = unit_hash(entry_id, node.id)
    if isinstance(node, ExperimentNode) and node.holdout_percent > 0:
        h = node.holdout_percent / 100
        if u < h:
            return "holdout"
        u = (u - h) / (1 - h)
    total = sum(a.weight for a in node.arms)
    acc = 0.0
    for a in node.arms:
        acc += a.weight / total
        if u < acc:
            return a.name
    return node.arms[-1].name
