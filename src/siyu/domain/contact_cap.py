"""The brand's per-customer daily cap on marketing messages (issue 6: "default 1/day").

One rule for every channel that markets to a customer (SMS, email, WeCom mass sends): a customer receives at
most ``per_day`` marketing messages per brand-local calendar day (Asia/Shanghai by default). Transactional
messages (order notices, verification codes) are not capped. Pure: callers count what was already sent today.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from siyu.domain.brand_time import DEFAULT_TIMEZONE
from siyu.errors import SiyuError

DEFAULT_PER_DAY = 1
MAX_PER_DAY = 20
PURPOSES: tuple[str, ...] = ("marketing", "transactional")


@dataclass(frozen=True)
class DailyCap:
    """At most ``per_day`` marketing messages per customer per local day (0 = no marketing at all)."""

    per_day: int = DEFAULT_PER_DAY
    timezone: str = DEFAULT_TIMEZONE

    def __post_init__(self) -> None:
        if not isinstance(self.per_day, int) or not 0 <= self.per_day <= MAX_PER_DAY:
            raise SiyuError(
                f"marketing_daily_cap must be a whole number from 0 to {MAX_PER_DAY} (got {self.per_day!r})",
                "marketing_daily_cap",
            )
        try:
            ZoneInfo(self.timezone)
        except Exception as exc:  # ZoneInfoNotFoundError, ValueError
            raise SiyuError(f"timezone {self.timezone!r} is not known; e.g. Asia/Shanghai", "timezone") from exc

    def day(self, at: datetime) -> date:
        """The brand-local day of ``at`` (a naive ``at`` is UTC, as the state store keeps times)."""
        aware = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
        return aware.astimezone(ZoneInfo(self.timezone)).date()

    def remaining(self, sent_today: int) -> int:
        """How many more marketing messages the customer may receive today."""
        return max(0, self.per_day - sent_today)

    def slot(self, taken: Iterable[int], held_elsewhere: int = 0) -> int | None:
        """The first free slot 1..per_day given the slots already taken today and the marketing messages another
        channel holds without slots (``held_elsewhere``, e.g. WeCom mass sends), or None when the cap is reached.

        Storing the slot under a unique (customer, day, slot) key makes the cap hold under concurrent senders."""
        used = set(taken)
        free = [s for s in range(1, self.per_day + 1) if s not in used]
        return free[held_elsewhere] if held_elsewhere < len(free) else None


@dataclass(frozen=True)
class CapSplit:
    """Recipients a marketing send may reach now, and those held back by the cap."""

    allowed: list[str] = field(default_factory=list)
    capped: list[str] = field(default_factory=list)


def split_by_cap(customers: Iterable[str], sent_today: Mapping[str, int], cap: DailyCap) -> CapSplit:
    """Split ``customers`` (in order, duplicates once) by the cap given today's marketing counts per customer;
    a customer listed twice counts once. Used by mass sends before they queue anything."""
    out = CapSplit()
    seen: set[str] = set()
    for c in customers:
        if c in seen:
            continue
        seen.add(c)
        (out.allowed if cap.remaining(sent_today.get(c, 0)) > 0 else out.capped).append(c)
    return out


def check_purpose(purpose: str) -> str:
    """``purpose`` if known, else a clear error."""
    if purpose not in PURPOSES:
        raise SiyuError(f"purpose {purpose!r} is not known; one of {', '.join(PURPOSES)}", "purpose")
    return purpose
