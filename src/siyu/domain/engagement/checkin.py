"""Daily check-in streaks (签到), pure.

A check-in belongs to the local calendar day in the activity's time zone (Asia/Shanghai by default), so
23:30 UTC on 31 Jan counts as 1 Feb in Shanghai. The streak is the number of consecutive local days with a
check-in ending on the day; a missed day resets it to 1 at the next check-in. Month ends are just days (31 Jan →
1 Feb continues the streak). Rewards are paid when a streak *reaches* one of the configured lengths (each
length once per streak; with ``cycle`` the lengths repeat after the longest one). Make-up cards (补签卡,
optional) fill one missed day within the last ``makeup_window_days``, at most ``makeup_per_month`` per local
month; the filled day joins the streak.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from pydantic import Field, ValidationError, model_validator

from siyu.domain.engagement.common import DEFAULT_TZ, Model, first_error, zone
from siyu.errors import SiyuError


class StreakReward(Model):
    """``reward_id`` granted when the streak reaches ``days``."""

    days: int = Field(ge=1, le=366)
    reward_id: str = Field(min_length=1, max_length=64)


class CheckinConfig(Model):
    """A check-in activity: an optional reward for every check-in, rewards at streak lengths, make-up cards."""

    daily_reward_id: str | None = Field(default=None, max_length=64)
    streak_rewards: list[StreakReward] = Field(default_factory=list, max_length=30)
    cycle: bool = False
    makeup_per_month: int = Field(default=0, ge=0, le=31)
    makeup_window_days: int = Field(default=7, ge=1, le=31)
    timezone: str = DEFAULT_TZ

    @model_validator(mode="after")
    def _check(self) -> CheckinConfig:
        days = [r.days for r in self.streak_rewards]
        if len(set(days)) != len(days):
            raise ValueError("streak_rewards: each streak length once")
        return self


def parse_checkin(data: dict[str, Any]) -> CheckinConfig:
    """Validate a check-in config; errors name the field."""
    try:
        cfg = CheckinConfig.model_validate(data)
    except ValidationError as exc:
        raise first_error(exc) from None
    zone(cfg.timezone)
    return cfg


def streak_at(days: set[date], day: date) -> int:
    """Consecutive days with a check-in ending on ``day`` (0 when ``day`` has none)."""
    n = 0
    d = day
    while d in days:
        n += 1
        d -= timedelta(days=1)
    return n


def current_streak(days: set[date], today: date) -> int:
    """The live streak: ending today, or ending yesterday when today has no check-in yet (still alive)."""
    return streak_at(days, today) or streak_at(days, today - timedelta(days=1))


def reached(config: CheckinConfig, before: int, after: int) -> list[StreakReward]:
    """Streak rewards whose length the streak passed going from ``before`` to ``after`` (``after`` > ``before``).
    With ``cycle`` the lengths repeat every ``max(days)`` days (day 8 of a 7-day cycle is day 1 again)."""
    out: list[StreakReward] = []
    if not config.streak_rewards:
        return out
    period = max(r.days for r in config.streak_rewards)
    for n in range(before + 1, after + 1):
        pos = ((n - 1) % period) + 1 if config.cycle else n
        out += [r for r in config.streak_rewards if r.days == pos]
    return out


def check_makeup(config: CheckinConfig, days: set[date], missed: date, today: date, used_this_month: int) -> None:
    """Raise a SiyuError when a make-up card may not fill ``missed``."""
    if config.makeup_per_month == 0:
        raise SiyuError("this check-in has no make-up cards", "day")
    if missed >= today:
        raise SiyuError("day: a make-up card fills a past day; check in normally today", "day")
    if (today - missed).days > config.makeup_window_days:
        raise SiyuError(f"day: make-up cards reach back {config.makeup_window_days} days at most", "day")
    if missed in days:
        raise SiyuError(f"day: {missed} already has a check-in", "day")
    if used_this_month >= config.makeup_per_month:
        raise SiyuError(f"day: all {config.makeup_per_month} make-up cards of this month are used", "day")
