"""Velocity limits (per device per day, per IP per hour, per person per day across the brand) hold exactly under
a burst of concurrent helps: through the group-commit writer, and with every help in its own transaction from
many threads (as several server processes would send them) — on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from siyu.services import brands
from siyu.services import campaigns as C
from siyu.services.context import Context

B = "velo"
NOW = datetime(2026, 11, 5, 4, 0)
LIMITS = {"device_per_day": 3, "ip_per_hour": 5, "person_per_day": 2}


def _campaign(ctx: Context, name: str) -> str:
    cid = C.create(
        ctx,
        B,
        {
            "kind": "assist",
            "name": name,
            "starts_at": "2026-11-01T00:00:00",
            "ends_at": "2026-11-12T00:00:00",
            "assist": {"tiers": [{"threshold": 15, "reward_id": "none"}]},
            "anti_abuse": LIMITS,
        },
    )["id"]
    C.launch(ctx, B, cid)
    return cid


def _burst(n: int, fn: Callable[[int], dict[str, Any]]) -> Counter[str]:
    """``fn(i)`` for i < n from n threads released at once; the answers' ``state:reason``."""
    got: Counter[str] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(n)

    def run(i: int) -> None:
        start.wait()
        r = fn(i)
        with lock:
            got[f"{r['state']}:{r['reason']}"] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return got


@pytest.mark.parametrize("batch", ["256", "0"], ids=["group_commit", "one_transaction_each"])
def test_velocity_limits_are_exact_in_a_burst(any_ctx: Context, batch: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIYU_HELP_BATCH", batch)
    ctx = any_ctx
    brands.create_brand(ctx, B, "Velocity")
    from siyu.services import rewards

    rewards.create_reward(ctx, B, {"id": "none", "name": "券", "kind": "coupon", "config": {"face_value": 1}})
    camps = [_campaign(ctx, f"c{i}") for i in range(5)]
    sharers = [
        [C.join(ctx, B, cid, C.parse_identity("unionid", f"s{k}-{cid}"), now=NOW)["token"] for k in range(8)]
        for cid in camps
    ]

    def ident(name: str) -> Any:
        return C.parse_identity("unionid", name)

    # one device, 16 different people and networks, helping 8 sharers of one campaign: 3 accepted
    dev = _burst(
        16,
        lambda i: C.help(
            ctx, B, camps[0], sharers[0][i % 8], ident(f"d{i}"), device_id="phone-1", ip=f"10.1.0.{i}", now=NOW
        ),
    )
    assert dev == Counter({"counted:": 3, "rejected:device_limit": 13}), dev
    # one network (IP), 16 people on their own devices: 5 accepted in the hour
    net = _burst(
        16,
        lambda i: C.help(
            ctx, B, camps[1], sharers[1][i % 8], ident(f"n{i}"), device_id=f"dev-n{i}", ip="10.2.0.1", now=NOW
        ),
    )
    assert net == Counter({"counted:": 5, "rejected:ip_limit": 11}), net
    # one person helping in all 5 campaigns (one help per campaign allowed) at once: 2 a day across the brand
    per = _burst(
        5,
        lambda i: C.help(
            ctx, B, camps[i], sharers[i][7], ident("p0"), device_id=f"dev-p{i}", ip=f"10.3.0.{i}", now=NOW
        ),
    )
    assert per == Counter({"counted:": 2, "rejected:person_limit": 3}), per
    # and the same person tapping twice at once in one campaign is counted once
    again = _burst(
        6,
        lambda i: C.help(
            ctx, B, camps[4], sharers[4][i], ident("p1"), device_id=f"dev-q{i}", ip=f"10.4.0.{i}", now=NOW
        ),
    )
    assert again == Counter({"counted:": 1, "rejected:already_helped": 5}), again


def test_stock_is_exact_with_concurrent_batches(any_ctx: Context) -> None:
    """Two writers (as two server processes) commit batches at the same time; 12 sharers reach a tier whose reward
    has 5 in stock: exactly 5 granted (Core grant path), 7 recorded as failed out_of_stock, the stock at 0."""
    from sqlalchemy import text

    from siyu.services import rewards
    from siyu.services.campaigns import help_writer
    from siyu.services.campaigns.participation import _prepare, _write_help

    ctx = any_ctx
    brands.create_brand(ctx, B, "Velocity")
    rewards.create_reward(
        ctx, B, {"id": "cup", "name": "杯", "kind": "coupon", "config": {"face_value": 5}, "stock": 5}
    )
    cid = C.create(
        ctx,
        B,
        {
            "kind": "assist",
            "name": "stock",
            "starts_at": "2026-11-01T00:00:00",
            "ends_at": "2026-11-12T00:00:00",
            "assist": {"tiers": [{"threshold": 2, "reward_id": "cup"}]},
            "anti_abuse": {"device_per_day": 1000, "ip_per_hour": 1000, "person_per_day": 1000},
        },
    )["id"]
    C.launch(ctx, B, cid)
    tokens = [C.join(ctx, B, cid, C.parse_identity("unionid", f"s{k}"), now=NOW)["token"] for k in range(12)]
    writers = [help_writer.HelpWriter(ctx.engine, 64), help_writer.HelpWriter(ctx.engine, 64)]
    try:

        def one(i: int) -> dict[str, Any]:
            ident = C.parse_identity("unionid", f"h{i}")
            job = _prepare(ctx, B, cid, tokens[i % 12], ident, (f"dev{i}", f"10.9.0.{i}", "", "", ""), NOW, None)
            return writers[i % 2].submit(lambda con: _write_help(con, job))

        got = _burst(24, one)
    finally:
        for w in writers:
            w.close()
    assert got == Counter({"counted:": 24})
    with ctx.engine.connect() as con:
        stock = tuple(con.execute(text("SELECT stock_left, granted FROM rewards WHERE id = 'cup'")).one())
        grants = con.execute(text("SELECT count(*) FROM reward_grants WHERE reward_id = 'cup'")).scalar()
        rows = dict(
            con.execute(
                text("SELECT status, count(*) FROM campaign_rewards WHERE campaign_id = :c GROUP BY status"), {"c": cid}
            ).all()
        )
        reached = con.execute(
            text("SELECT count(*) FROM campaign_participants WHERE campaign_id = :c AND tiers_reached = 1"), {"c": cid}
        ).scalar()
    assert stock == (0, 5) and grants == 5
    assert rows == {"granted": 5, "failed": 7} and reached == 12
