"""Showcase campaigns of the demo brand, driven through ``siyu.services.campaigns`` with explicit ``now``:
a finished October 助力 (tiers, per-guide targets, an invite tree of depth ≤ 3, rejected helps) and a live 拼团."""

from __future__ import annotations

import random
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from siyu.domain.brand_time import day_end_utc
from siyu.domain.models import Identity
from siyu.services import campaigns as C
from siyu.services import rewards
from siyu.services.context import Context
from siyu.services.demo.config import END_DATE, PRODUCTS
from siyu.services.imports.runner import run_import
from siyu.stores.state.models import utcnow

ASSIST_NAME = "金秋焕颜 好友助力领好礼"
GROUP_NAME = "双十二 三人拼团 面膜礼盒"
ASSIST_START = datetime(2026, 10, 8, 0, 0)  # naive UTC, like every time the services keep
ASSIST_END = datetime(2026, 10, 22, 0, 0)
LAST = ASSIST_END - timedelta(hours=10)  # before the close (ends_at is Asia/Shanghai time, 8 h ahead of UTC)

REWARDS: tuple[dict[str, Any], ...] = (
    {"id": "demo_cp10", "name": "10元无门槛券", "kind": "coupon", "config": {"face_value": 10}, "unit_cost": 10.0},
    {"id": "demo_sample", "name": "精华小样套装", "kind": "physical", "config": {}, "unit_cost": 18.0},
    {"id": "demo_serum", "name": "玻尿酸精华 正装", "kind": "physical", "config": {}, "unit_cost": 79.0},
    {"id": "demo_cream", "name": "修护面霜 正装", "kind": "physical", "config": {}, "unit_cost": 69.0},
    {"id": "demo_cp20", "name": "20元拼团券", "kind": "coupon", "config": {"face_value": 20}, "unit_cost": 20.0},
    {"id": "demo_mask", "name": "面膜礼盒（5片）", "kind": "physical", "config": {}, "unit_cost": 25.0},
)
CHANNELS = ("moments", "wecom_chat", "sms", "store")


def ensure_rewards(ctx: Context, brand_id: str) -> None:
    """The rewards the showcase campaigns give (created once)."""
    for r in REWARDS:
        if rewards.get_reward(ctx, brand_id, r["id"]) is None:
            rewards.create_reward(ctx, brand_id, dict(r), "demo")


def _existing(ctx: Context, brand_id: str, name: str) -> str | None:
    for c in C.list_campaigns(ctx, brand_id):
        if c["name"] == name:
            return str(c["id"])
    return None


def _new_phone(n: int) -> Identity:
    return C.parse_identity("phone", f"1990{n:07d}")


def _guides(ctx: Context, brand_id: str) -> list[str]:
    rows = ctx.warehouse.fetch("SELECT guide_id FROM guides WHERE brand_id = ? ORDER BY guide_id", [brand_id])
    return [str(r[0]) for r in rows]


def assist_campaign(ctx: Context, brand_id: str, phones: list[str]) -> dict[str, int]:
    """The finished October 助力 campaign; ``phones``: existing demo customers' phones (seeds and helpers)."""
    if _existing(ctx, brand_id, ASSIST_NAME):
        return {}
    guides = _guides(ctx, brand_id)
    definition = {
        "kind": "assist",
        "name": ASSIST_NAME,
        "title": "邀请好友助力，领精华小样",
        "description": "邀请 3 位好友助力得 10 元券，6 位得精华小样套装，10 位任选一件正装。",
        "starts_at": ASSIST_START.isoformat(),
        "ends_at": ASSIST_END.isoformat(),
        "assist": {
            "tiers": [
                {"threshold": 3, "reward_id": "demo_cp10", "name": "10元券"},
                {"threshold": 6, "reward_id": "demo_sample", "name": "小样套装"},
                {"threshold": 10, "pool": ["demo_serum", "demo_cream"], "name": "正装任选"},
            ],
            "cyclic": True,
        },
        "anti_abuse": {"device_per_day": 3, "ip_per_hour": 30, "person_per_day": 10},
        "budget": 20000,
        "max_depth": 3,
        "guide_targets": [
            {"guide_id": g, "participants": 6, "new_customers": 8, "conversions": 2, "gmv": 1500} for g in guides
        ],
    }
    cid = C.create(ctx, brand_id, definition, "operator")["id"]
    C.launch(ctx, brand_id, cid)
    rng = random.Random(20261008)
    pool = list(phones)
    rng.shuffle(pool)
    new_n = 0
    counts = {"participants": 0, "helps": 0, "rejected": 0}
    span = (ASSIST_END - ASSIST_START - timedelta(days=2)).total_seconds()
    seen: list[tuple[datetime, str, str]] = []  # (when, channel, page) of each join and help: their page views
    fresh: set[str] = set()  # the phones of people new to the brand
    newcomers: dict[str, tuple[datetime, str | None]] = {}  # new helper's phone → (first counted help, guide)

    def next_helper() -> Identity:
        nonlocal new_n
        if pool and rng.random() < 0.55:  # existing customers help, and new people arrive through the campaign
            return C.parse_identity("phone", pool.pop())
        new_n += 1
        who = _new_phone(new_n)
        fresh.add(who.value)
        return who

    def grow(p: dict[str, Any], at: datetime, depth: int) -> None:
        n_helps = rng.choice((1, 2, 3, 3, 4, 5, 7)) if depth == 0 else rng.choice((0, 1, 2, 3))
        helpers: list[Identity] = []
        for _ in range(n_helps):
            who = next_helper()
            when = min(at + timedelta(minutes=rng.randint(5, 36 * 60)), LAST)
            seen.append((when, str(p.get("channel") or ""), "help"))
            out = C.help(ctx, brand_id, cid, p["token"], who, device_id=f"dev-{who.value[-8:]}", now=when)
            counts["helps" if out["state"] == "counted" else "rejected"] += 1
            if out["state"] == "counted" and who.value in fresh:
                newcomers.setdefault(who.value, (when, p.get("guide_id")))
            helpers.append(who)
            if depth < 3 and when < LAST and rng.random() < 0.2:  # 循环裂变: a helper starts their own
                child = C.join(ctx, brand_id, cid, who, sharer_token=p["token"], now=when + timedelta(minutes=3))
                seen.append((when + timedelta(minutes=3), str(child.get("channel") or ""), "campaign"))
                counts["participants"] += 1
                grow(child, when + timedelta(minutes=3), depth + 1)
        if helpers and rng.random() < 0.25:  # the same friend helps twice: rejected (already helped)
            dup = helpers[0]
            out = C.help(
                ctx,
                brand_id,
                cid,
                p["token"],
                dup,
                device_id=f"dev-{dup.value[-8:]}",
                now=min(at + timedelta(hours=40), LAST),
            )
            counts["helps" if out["state"] == "counted" else "rejected"] += 1

    seeds = [(g, k) for g in guides for k in range(2 if g in guides[:3] else 1)]
    for i, (g, _) in enumerate(seeds):
        if not pool:
            break
        who = C.parse_identity("phone", pool.pop())
        at = ASSIST_START + timedelta(seconds=rng.random() * span)
        p = C.join(ctx, brand_id, cid, who, channel=CHANNELS[i % len(CHANNELS)], platform="wechat", guide_id=g, now=at)
        seen.append((at, CHANNELS[i % len(CHANNELS)], "campaign"))
        counts["participants"] += 1
        if i % 9 == 0:  # a sharer tries to help themselves: rejected (self help)
            out = C.help(ctx, brand_id, cid, p["token"], who, now=at + timedelta(minutes=1))
            counts["helps" if out["state"] == "counted" else "rejected"] += 1
        grow(p, at, 0)
    counts["visits"] = record_views(ctx, cid, seen, ASSIST_START, 20261009)
    counts["newcomer_orders"] = newcomer_orders(ctx, brand_id, newcomers, 20261010)
    # the helpers new to the brand become customers now (``campaigns.tick`` would, minutes after `demo up`)
    C.flush_observations(ctx, brand_id)
    C.end(ctx, brand_id, cid)
    return counts


def group_campaign(ctx: Context, brand_id: str, phones: list[str], now: datetime | None = None) -> dict[str, int]:
    """The live 拼团 (three days old, ending in two and a half weeks), with full and open teams."""
    if _existing(ctx, brand_id, GROUP_NAME):
        return {}
    now = now or utcnow()
    start = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=3)
    guides = _guides(ctx, brand_id)
    definition = {
        "kind": "group_buy",
        "name": GROUP_NAME,
        "title": "三人成团，面膜礼盒免费领",
        "description": "发起拼团，邀请 2 位好友 48 小时内成团：团长得面膜礼盒，团员得 20 元券。",
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(days=21)).isoformat(),
        "group_buy": {
            "team_size": 3,
            "team_hours": 48,
            "initiator_reward_id": "demo_mask",
            "joiner_reward_id": "demo_cp20",
        },
        "budget": 5000,
        "guide_targets": [{"guide_id": g, "participants": 5, "new_customers": 4} for g in guides[:6]],
    }
    cid = C.create(ctx, brand_id, definition, "operator")["id"]
    C.launch(ctx, brand_id, cid)
    rng = random.Random(20261212)
    pool = list(phones)
    rng.shuffle(pool)
    counts = {"teams": 0, "joins": 0}
    seen: list[tuple[datetime, str, str]] = []
    for i in range(8):
        if len(pool) < 3:
            break
        lead = C.parse_identity("phone", pool.pop())
        team = C.start_team(ctx, brand_id, cid, lead, guide_id=guides[i % 3], channel=CHANNELS[i % 2], now=now)
        counts["teams"] += 1
        seen.append((now, CHANNELS[i % 2], "campaign"))
        for _ in range(2 if i % 2 == 0 else 1):  # half the teams are full, half still wait for a friend
            C.join_team(ctx, brand_id, team["id"], C.parse_identity("phone", pool.pop()), now=now)
            counts["joins"] += 1
            seen.append((now, CHANNELS[i % 2], "campaign"))
    counts["visits"] = record_views(ctx, cid, seen, start, 20261213)
    return counts


def record_views(ctx: Context, cid: str, seen: list[tuple[datetime, str, str]], start: datetime, seed: int) -> int:
    """The page views behind the showcase's joins and helps (``seen``: when, channel, page), and about as many
    again from visitors who did nothing, in the hours before: the funnel (访问参与率, 参与率) reads as a real
    campaign's. Returns the views recorded."""
    rng = random.Random(seed)  # its own: the campaign's draws stay as they were
    views: dict[tuple[datetime, str, str], int] = {}
    for at, channel, page in seen:
        for k in range(1 + rng.choice((0, 1, 1, 2, 3))):  # the person's own view, then idle visitors'
            when = max(start, at - timedelta(minutes=k * rng.randint(5, 180)))
            key = (when.replace(minute=0, second=0, microsecond=0), channel, page)
            views[key] = views.get(key, 0) + 1
    for (when, channel, page), n in sorted(views.items()):
        C.record_visit(ctx, cid, channel=channel, page=page, at=when, views=n)
    return sum(views.values())


def newcomer_orders(ctx: Context, brand_id: str, newcomers: dict[str, tuple[datetime, str | None]], seed: int) -> int:
    """Orders of the people the campaign brought in (``newcomers``: phone → first counted help, the sharer's
    guide), loaded as a brand would — an orders file through the import service: about 40 % buy within 2–6 days
    of helping, 20 % more within 9–28 — what the campaign's conversions, GMV and 7 / 30-day retention then read.
    None after the demo data's last day (``END_DATE``, China time): it is the day every report reads as "now".
    Returns the orders imported."""
    rng = random.Random(seed)
    last = day_end_utc(END_DATE) - timedelta(seconds=1)  # 23:59:59 in Shanghai, in UTC
    rows: list[dict[str, Any]] = []
    for n, (phone, (helped, guide)) in enumerate(sorted(newcomers.items())):
        roll = rng.random()
        if roll >= 0.6:
            continue
        days = rng.uniform(2, 6) if roll < 0.4 else rng.uniform(9, 28)
        sku, name, price, _ = PRODUCTS[rng.randrange(len(PRODUCTS))]
        amount = round(price * 0.9, 2)  # the campaign coupon's 10 % off
        at = (helped + timedelta(days=days)).replace(microsecond=0)
        if at > last:
            continue
        rows.append(
            {
                "订单号": f"LYC{n:06d}",
                "手机号": phone,
                "下单时间": at.replace(tzinfo=UTC).isoformat(" "),
                "实付金额": amount,
                "商品编码": sku,
                "商品名称": name,
                "数量": 1,
                "单价": amount,
                "导购": guide or "",
            }
        )
    if not rows:
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "助力新客订单.csv"
        pd.DataFrame(rows).to_csv(path, index=False)
        job = run_import(ctx, brand_id, "orders", path, created_by="demo")
    return int(job.rows_ok or 0)
