"""Lottery: draw frequencies within binomial bounds (fixed seed), reproducible draws, stock exhaustion falls to
no prize, the per-person daily limit (local day, under concurrency), config errors."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime, timedelta

import pytest
from scipy.stats import binom

from siyu.domain.engagement.lottery import Prize, draw_number, parse_lottery, pick
from siyu.errors import TooManyRequests
from siyu.services import engagement, rewards
from siyu.services.brands import ensure_brand
from siyu.services.context import Context
from siyu.services.errors import Conflict, SiyuError

B = "lot"
PRIZES = [
    Prize(key="big", name="大奖", reward_id="r1", probability=0.02),
    Prize(key="mid", name="中奖", reward_id="r2", probability=0.18),
    Prize(key="small", name="小奖", reward_id="r3", probability=0.3),
]


def test_frequencies_within_binomial_bounds() -> None:
    n = 20_000
    counts = Counter(
        (p.key if (p := pick(PRIZES, draw_number("seed-1", "a1", f"c{i}", "2026-01-01", 1))) else "none")
        for i in range(n)
    )
    expected = {"big": 0.02, "mid": 0.18, "small": 0.3, "none": 0.5}
    for key, prob in expected.items():
        lo, hi = binom.ppf(0.0005, n, prob), binom.ppf(0.9995, n, prob)  # 99.9 % two-sided
        assert lo <= counts[key] <= hi, (key, counts[key], lo, hi)


def test_pick_edges_and_config_errors() -> None:
    assert pick(PRIZES, 0.0) is PRIZES[0] and pick(PRIZES, 0.0199).key == "big"  # type: ignore[union-attr]
    assert pick(PRIZES, 0.02).key == "mid" and pick(PRIZES, 0.4999).key == "small"  # type: ignore[union-attr]
    assert pick(PRIZES, 0.5) is None and pick(PRIZES, 0.999999) is None
    assert draw_number("s", "a", "c", "d", 1) == draw_number("s", "a", "c", "d", 1)
    assert draw_number("s", "a", "c", "d", 1) != draw_number("s", "a", "c", "d", 2)
    bad = [
        ({"prizes": [{"key": "a", "name": "A", "reward_id": "r", "probability": 0.7}] * 2}, "config.prizes"),
        ({"prizes": [{"key": "a", "name": "A", "reward_id": "r", "probability": 0}]}, "config.prizes.0.probability"),
        ({"prizes": []}, "config.prizes"),
        (
            {"prizes": [{"key": "a", "name": "A", "reward_id": "r", "probability": 0.1}], "daily_limit": 0},
            "config.daily_limit",
        ),
    ]
    for cfg, field in bad:
        with pytest.raises(SiyuError) as info:
            parse_lottery(cfg)
        assert info.value.field == field, (cfg, info.value.message)
    with pytest.raises(SiyuError, match=r"add up to 1\.4"):
        parse_lottery(bad[0][0])


@pytest.fixture
def lctx(ctx: Context) -> Context:
    ensure_brand(ctx, B, "Lottery test")
    rewards.create_reward(ctx, B, {"id": "gift", "name": "杯子", "kind": "physical", "stock": 3, "unit_cost": 20})
    rewards.create_reward(ctx, B, {"id": "pts", "name": "10 积分", "kind": "points", "config": {"points": 10}})
    return ctx


def test_service_draws_follow_the_seed_and_stock_runs_out(lctx: Context) -> None:
    cfg = {
        "prizes": [
            {"key": "gift", "name": "杯子", "reward_id": "gift", "probability": 0.3},
            {"key": "pts", "name": "积分", "reward_id": "pts", "probability": 0.4},
        ],
        "daily_limit": 100,
        "seed": "fixed",
    }
    act = engagement.create_activity(lctx, B, "lottery", "幸运抽奖", cfg, activity_id="lucky")
    now = datetime(2026, 5, 1, 4)
    outcomes = [engagement.draw(lctx, B, "lucky", "c1", now=now) for _ in range(60)]
    won_gift = [o for o in outcomes if o["outcome"] == "won" and o["prize"]["key"] == "gift"]
    assert len(won_gift) == 3  # stock 3
    for o in outcomes:  # every draw is the one the seed gives; the 4th+ gift drawn falls to no prize
        expected = pick(parse_lottery(cfg).prizes, draw_number("fixed", act["id"], "c1", "2026-05-01", o["attempt"]))
        assert o["drawn"] == (expected.key if expected else None)
    gift_drawn = [o for o in outcomes if o["drawn"] == "gift"]
    assert len(gift_drawn) > 3
    assert [o["outcome"] for o in gift_drawn[3:]] == ["out_of_stock"] * (len(gift_drawn) - 3)
    assert all(o["grant"] is None and "out of stock" in o["reason"] for o in gift_drawn[3:])
    pts_won = sum(1 for o in outcomes if o["drawn"] == "pts")
    assert rewards.points.balance(lctx, B, "c1")["balance"] == 10 * pts_won
    stats = engagement.lottery_stats(lctx, B, "lucky")
    assert stats["draws"] == 60 and stats["by_outcome"]["out_of_stock"] == len(gift_drawn) - 3
    assert {p["key"]: p["won"] for p in stats["prizes"]} == {"gift": 3, "pts": pts_won}
    assert rewards.reward_cost(lctx, B, "lottery", "lucky") == pytest.approx(60.0)


def test_daily_limit_by_local_day_and_under_concurrency(lctx: Context) -> None:
    cfg = {"prizes": [{"key": "p", "name": "积分", "reward_id": "pts", "probability": 0.5}], "daily_limit": 2}
    engagement.create_activity(lctx, B, "lottery", "每日抽奖", cfg, activity_id="daily")
    t = datetime(2026, 5, 1, 15, 0)  # 23:00 in Shanghai
    engagement.draw(lctx, B, "daily", "c2", now=t)
    engagement.draw(lctx, B, "daily", "c2", now=t + timedelta(minutes=30))
    with pytest.raises(TooManyRequests, match="2 draw"):
        engagement.draw(lctx, B, "daily", "c2", now=t + timedelta(minutes=59))
    after_midnight = t + timedelta(hours=1, minutes=1)  # 16:01 UTC = 00:01 next day in Shanghai
    assert engagement.draw(lctx, B, "daily", "c2", now=after_midnight)["day"] == "2026-05-02"

    results: list[str] = []
    barrier = threading.Barrier(12)

    def work() -> None:
        barrier.wait()
        try:
            engagement.draw(lctx, B, "daily", "c3", now=t)
            results.append("ok")
        except TooManyRequests:
            results.append("limit")

    ts = [threading.Thread(target=work) for _ in range(12)]
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    assert results.count("ok") == 2 and results.count("limit") == 10


def test_activity_rules(lctx: Context) -> None:
    with pytest.raises(SiyuError) as info:
        engagement.create_activity(
            lctx, B, "lottery", "x", {"prizes": [{"key": "a", "name": "A", "reward_id": "nope", "probability": 0.1}]}
        )
    assert info.value.field == "config.prizes.0.reward_id"
    cfg = {"prizes": [{"key": "p", "name": "积分", "reward_id": "pts", "probability": 0.5}]}
    engagement.create_activity(lctx, B, "lottery", "x", cfg, activity_id="later", starts_at="2030-01-01T00:00:00")
    with pytest.raises(Conflict, match="starts at"):
        engagement.draw(lctx, B, "later", "c")
    engagement.create_activity(lctx, B, "lottery", "y", cfg, activity_id="p1")
    engagement.set_status(lctx, B, "p1", "paused")
    with pytest.raises(Conflict, match="paused"):
        engagement.draw(lctx, B, "p1", "c")
