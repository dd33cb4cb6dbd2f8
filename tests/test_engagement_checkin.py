"""Check-in streaks: local days in Asia/Shanghai across a month end, a missed day resets, rewards at streak
lengths (once per streak, cycles), make-up cards and their limits."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from siyu.domain.engagement.checkin import CheckinConfig, StreakReward, current_streak, reached, streak_at
from siyu.services import engagement, rewards
from siyu.services.brands import ensure_brand
from siyu.services.context import Context
from siyu.services.errors import Conflict, SiyuError

B = "chk"


def test_streak_rules_pure() -> None:
    days = {date(2026, 1, 30), date(2026, 1, 31), date(2026, 2, 1), date(2026, 2, 3)}
    assert streak_at(days, date(2026, 2, 1)) == 3  # across the month end
    assert streak_at(days, date(2026, 2, 3)) == 1  # 2 Feb missed: reset
    assert current_streak(days, date(2026, 2, 4)) == 1  # alive until today ends
    assert current_streak(days, date(2026, 2, 5)) == 0
    leap = {date(2028, 2, 28), date(2028, 2, 29), date(2028, 3, 1)}
    assert streak_at(leap, date(2028, 3, 1)) == 3
    cfg = CheckinConfig(streak_rewards=[StreakReward(days=3, reward_id="a"), StreakReward(days=7, reward_id="b")])
    assert [r.reward_id for r in reached(cfg, 0, 7)] == ["a", "b"]
    assert reached(cfg, 3, 6) == [] and [r.days for r in reached(cfg, 6, 10)] == [7]
    cyc = cfg.model_copy(update={"cycle": True})
    assert [r.reward_id for r in reached(cyc, 7, 14)] == ["a", "b"]  # day 10 = day 3 of the second week


@pytest.fixture
def cctx(ctx: Context) -> Context:
    ensure_brand(ctx, B, "Check-in test")
    rewards.create_reward(ctx, B, {"id": "daily", "name": "5 积分", "kind": "points", "config": {"points": 5}})
    rewards.create_reward(ctx, B, {"id": "three", "name": "30 积分", "kind": "points", "config": {"points": 30}})
    rewards.create_reward(ctx, B, {"id": "five", "name": "券", "kind": "coupon", "config": {"face_value": 5}})
    cfg = {
        "daily_reward_id": "daily",
        "streak_rewards": [{"days": 3, "reward_id": "three"}, {"days": 5, "reward_id": "five"}],
        "makeup_per_month": 1,
        "makeup_window_days": 3,
    }
    engagement.create_activity(ctx, B, "checkin", "每日签到", cfg, activity_id="sign")
    return ctx


def _at(y: int, m: int, d: int, hh: int, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm)  # UTC


def test_streak_across_month_end_in_shanghai_time(cctx: Context) -> None:
    r1 = engagement.check_in(cctx, B, "sign", "u1", now=_at(2026, 1, 29, 18))  # 30 Jan 02:00 Shanghai
    assert (r1["day"], r1["streak"]) == ("2026-01-30", 1)
    r2 = engagement.check_in(cctx, B, "sign", "u1", now=_at(2026, 1, 31, 15, 59))  # 31 Jan 23:59
    assert (r2["day"], r2["streak"]) == ("2026-01-31", 2)
    r3 = engagement.check_in(cctx, B, "sign", "u1", now=_at(2026, 1, 31, 16, 0))  # 1 Feb 00:00
    assert (r3["day"], r3["streak"]) == ("2026-02-01", 3)
    assert [p["reward_id"] for p in r3["rewards"]] == ["daily", "three"]
    with pytest.raises(Conflict, match="already checked in on 2026-02-01"):
        engagement.check_in(cctx, B, "sign", "u1", now=_at(2026, 2, 1, 3))  # still 1 Feb in Shanghai
    # 2 Feb missed → 3 Feb starts again at 1, no streak reward
    r4 = engagement.check_in(cctx, B, "sign", "u1", now=_at(2026, 2, 3, 1))
    assert (r4["day"], r4["streak"]) == ("2026-02-03", 1) and [p["reward_id"] for p in r4["rewards"]] == ["daily"]
    assert rewards.points.balance(cctx, B, "u1")["balance"] == 4 * 5 + 30
    st = engagement.checkin_status(cctx, B, "sign", "u1", now=_at(2026, 2, 3, 10))
    assert st["checked_in_today"] and st["streak"] == 1 and st["month_days"] == ["2026-02-01", "2026-02-03"]
    assert st["next_reward"] == {"days": 3, "reward_id": "three"}

    # make-up card fills 2 Feb: the streak is 30 Jan .. 3 Feb = 5 → the 5-day coupon; the 3-day reward not again
    m = engagement.make_up(cctx, B, "sign", "u1", "2026-02-02", now=_at(2026, 2, 3, 2))
    assert m["streak"] == 5 and [p["reward_id"] for p in m["rewards"]] == ["five"]
    assert rewards.list_grants(cctx, B, customer_id="u1", reward_id="three")["total"] == 1
    with pytest.raises(SiyuError, match="make-up cards of this month are used"):
        engagement.make_up(cctx, B, "sign", "u1", "2026-02-05", now=_at(2026, 2, 6, 2))


def test_make_up_limits(cctx: Context) -> None:
    now = _at(2026, 3, 10, 4)
    engagement.check_in(cctx, B, "sign", "u2", now=now)
    cases = [("2026-03-10", "check in normally"), ("2026-03-06", "reach back 3 days"), ("10/03", "YYYY-MM-DD")]
    for day, msg in cases:
        with pytest.raises(SiyuError, match=msg):
            engagement.make_up(cctx, B, "sign", "u2", day, now=now)
    engagement.make_up(cctx, B, "sign", "u2", "2026-03-09", now=now)
    with pytest.raises(SiyuError, match="already has a check-in"):
        engagement.make_up(cctx, B, "sign", "u2", "2026-03-09", now=now + timedelta(days=1))
    # the monthly allowance is per local month: in April there is a new card
    april = _at(2026, 4, 2, 4)
    assert engagement.make_up(cctx, B, "sign", "u2", "2026-04-01", now=april)["makeup"] is True


def test_unavailable_reward_does_not_block_the_check_in(cctx: Context) -> None:
    rewards.update_reward(cctx, B, "daily", {"status": "inactive"})
    r = engagement.check_in(cctx, B, "sign", "u3", now=_at(2026, 6, 1, 4))
    assert r["streak"] == 1 and r["rewards"][0]["unavailable"] == "inactive"
