"""More ready-made journeys from the seeds (pure; ``siyu.services.journeys.templates`` saves them):

- ``insurance_birthday``: 15 days before the birthday, the coverage gap = recommended cover (by age and yearly
  budget, ``recommended_cover``) − cover held (``traits.cover_held``) picks a product, stored on the customer
  (``traits.recommended_product``); the advisor gets a call task in the customer's active hours.
- ``dental_no_show``: a missed booking (event) → day 2 an in-store incentive → within the week, no visit → the
  guide calls; patients who came: lead-in (small spend) → a second-product follow-up, high-ticket → care touches
  that ask for referrals.
- ``cadence``: a small activity every 3 days for the audience.
- ``campaign``: a big campaign — warm-up 10 days before, a small activity every 5 days during, a 2-day encore.
"""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta
from typing import Any

from siyu.domain.brand_time import brand_today

SEGMENT_PLACEHOLDER = "$segment"

# (age band low, high) × (yearly budget band low, high) in CNY; recommended cover = budget × multiple by age band
AGE_BANDS: tuple[tuple[int, int], ...] = ((18, 29), (30, 44), (45, 59), (60, 120))
BUDGET_BANDS: tuple[tuple[int, int], ...] = ((0, 4999), (5000, 14999), (15000, 10_000_000))
COVER_MULTIPLE = {(18, 29): 100, (30, 44): 80, (45, 59): 50, (60, 120): 20}
BUDGET_POINT = {(0, 4999): 3000, (5000, 14999): 10000, (15000, 10_000_000): 20000}
# products by gap (CNY), largest first: (branch name, minimum gap, product)
PRODUCTS: tuple[tuple[str, int, str], ...] = (
    ("gap_large", 500_000, "终身寿险 + 重疾组合"),
    ("gap_medium", 200_000, "重疾险"),
    ("gap_small", 1, "医疗险 / 意外险补充"),
)


def recommended_cover(age: int, budget: float) -> int:
    """Recommended cover (CNY) for an age and a yearly premium budget: the budget band's point × the age multiple."""
    a = next((b for b in AGE_BANDS if b[0] <= age <= b[1]), AGE_BANDS[0] if age < 18 else AGE_BANDS[-1])
    bb = next((b for b in BUDGET_BANDS if b[0] <= budget <= b[1]), BUDGET_BANDS[-1])
    return BUDGET_POINT[bb] * COVER_MULTIPLE[a]


def product_for(age: int, budget: float, cover_held: float) -> str | None:
    """The product the journey picks for a customer (None: no gap)."""
    gap = recommended_cover(age, budget) - cover_held
    return next((p for _, low, p in PRODUCTS if gap >= low), None)


def _gap_condition(min_gap: int) -> dict[str, Any]:
    """Customers whose gap is at least ``min_gap``: one (age band, budget band, cover held ≤ R − gap) per cell."""
    cells = []
    for a in AGE_BANDS:
        for b in BUDGET_BANDS:
            r = BUDGET_POINT[b] * COVER_MULTIPLE[a]
            if r - min_gap < 0:
                continue
            cells.append(
                {
                    "kind": "and",
                    "conditions": [
                        {"kind": "trait", "field": "traits.age", "op": "between", "value": list(a)},
                        {"kind": "trait", "field": "traits.budget", "op": "between", "value": list(b)},
                        {"kind": "trait", "field": "traits.cover_held", "op": "lte", "value": r - min_gap},
                    ],
                }
            )
    return {"kind": "or", "conditions": cells}


def insurance_birthday(days_before: int = 15, call_at: str = "10:00") -> dict[str, Any]:
    """15 days before the birthday: coverage gap → product → advisor call task in the customer's active hours."""
    audience = {"kind": "trait", "field": "birthday", "op": "exists"}
    nodes: list[dict[str, Any]] = [
        {
            "id": "gap",
            "kind": "condition",
            "label": "保障缺口（推荐保额 − 已有保额）",
            "branches": [{"name": name, "condition": _gap_condition(low)} for name, low, _ in PRODUCTS],
        },
    ]
    edges: list[dict[str, Any]] = []
    for name, _, product in PRODUCTS:
        pick, wait, task = f"pick_{name}", f"hours_{name}", f"call_{name}"
        nodes += [
            {
                "id": pick,
                "kind": "action",
                "label": f"推荐：{product}",
                "action": {"type": "attribute", "field": "traits.recommended_product", "value": product},
            },
            {"id": wait, "kind": "wait", "mode": "time_of_day", "at": call_at, "use_active_hours": True},
            {
                "id": task,
                "kind": "action",
                "label": "顾问生日关怀电话",
                "action": {
                    "type": "task",
                    "task_kind": "call",
                    "title": f"生日前关怀：推荐{product}",
                    "script": f"您好，再过两周就是您的生日，提前祝您生日快乐！根据您的年龄和预算，"
                    f"您目前的保障还有缺口，我为您准备了「{product}」的方案，方便时给您详细讲讲？",
                    "due_hours": 4,
                },
            },
        ]
        edges += [
            {"from": "gap", "to": pick, "branch": name},
            {"from": pick, "to": wait},
            {"from": wait, "to": task},
            {"from": task, "to": "end"},
        ]
    nodes += [
        {
            "id": "greet",
            "kind": "action",
            "label": "生日祝福（无缺口）",
            "action": {
                "type": "send",
                "channel": "wecom_1to1",
                "content": "提前祝您生日快乐！生日当月可领取专属体检礼。",
            },
        },
        {"id": "end", "kind": "exit"},
    ]
    edges += [{"from": "gap", "to": "greet", "branch": "else"}, {"from": "greet", "to": "end"}]
    journey = {
        "trigger": {"kind": "date", "field": "birthday", "offset_days": -days_before, "annual": True},
        "reentry": {"mode": "after_days", "days": 300},
        "guards": {"quiet_hours": {"start": "21:00", "end": "09:00"}, "frequency_cap": {"max": 3, "per_days": 7}},
        "goal": {"event": "Policy Purchased", "exit_on_goal": False, "value_property": "premium"},
        "start": "gap",
        "nodes": nodes,
        "edges": edges,
    }
    return {"segment": audience, "journey": journey}


def dental_no_show(
    missed_event: str = "Booking Missed",
    visit_event: str = "Visit Completed",
    lead_in_below: float = 1000,
    high_ticket_from: float = 10000,
) -> dict[str, Any]:
    """Booked but not arrived → day 2 incentive → no visit within the week → guide call; arrivals are followed
    up by ticket: lead-in → second product, high-ticket → care touches asking for referrals."""
    audience = {"kind": "event", "event": missed_event, "window_days": 30, "op": "gte", "value": 1}
    nodes: list[dict[str, Any]] = [
        {"id": "day2", "kind": "wait", "label": "第 2 天", "minutes": 24 * 60},
        {
            "id": "incentive",
            "kind": "action",
            "label": "到店礼",
            "action": {
                "type": "send",
                "channel": "wecom_1to1",
                "content": "您的预约我们帮您保留了，本周到店可领取洁牙护理礼包一份，回复时间即可改约。",
            },
        },
        {
            "id": "visit",
            "kind": "wait_event",
            "label": "一周内到店？",
            "event": visit_event,
            "timeout_minutes": 5 * 24 * 60,
        },
        {
            "id": "call",
            "kind": "action",
            "label": "导购电话改约",
            "action": {
                "type": "task",
                "task_kind": "call",
                "title": "爽约客户改约",
                "script": "了解未到店原因，推荐最近的空档，提醒到店礼本周有效。",
                "due_hours": 24,
            },
        },
        {
            "id": "ticket",
            "kind": "condition",
            "label": "客单分层",
            "branches": [
                {
                    "name": "lead_in",
                    "condition": {"kind": "orders", "measure": "sum", "op": "lt", "value": lead_in_below},
                },
                {
                    "name": "high_ticket",
                    "condition": {"kind": "orders", "measure": "sum", "op": "gte", "value": high_ticket_from},
                },
            ],
        },
        {
            "id": "second",
            "kind": "action",
            "label": "二次项目跟进",
            "action": {
                "type": "task",
                "task_kind": "message",
                "title": "引流客户二次项目",
                "script": "回访本次体验，介绍适合的第二个项目（如窝沟封闭 / 美白），预约下次时间。",
                "due_hours": 48,
            },
        },
        {
            "id": "care",
            "kind": "action",
            "label": "术后关怀",
            "action": {
                "type": "send",
                "channel": "wecom_1to1",
                "content": "治疗后这几天感觉怎么样？有任何不适随时告诉我。",
            },
        },
        {"id": "care_wait", "kind": "wait", "minutes": 3 * 24 * 60},
        {
            "id": "referral",
            "kind": "action",
            "label": "转介绍邀请",
            "action": {
                "type": "send",
                "channel": "wecom_1to1",
                "content": "感谢信任！推荐亲友来诊，双方各得一次免费洁牙。",
            },
        },
        {"id": "end", "kind": "exit"},
    ]
    edges = [
        {"from": "day2", "to": "incentive"},
        {"from": "incentive", "to": "visit"},
        {"from": "visit", "to": "ticket", "branch": "event"},
        {"from": "visit", "to": "call", "branch": "timeout"},
        {"from": "call", "to": "end"},
        {"from": "ticket", "to": "second", "branch": "lead_in"},
        {"from": "ticket", "to": "care", "branch": "high_ticket"},
        {"from": "ticket", "to": "end", "branch": "else"},
        {"from": "second", "to": "end"},
        {"from": "care", "to": "care_wait"},
        {"from": "care_wait", "to": "referral"},
        {"from": "referral", "to": "end"},
    ]
    journey = {
        "trigger": {"kind": "event", "event": missed_event},
        "reentry": {"mode": "after_exit"},
        "guards": {"quiet_hours": {"start": "21:00", "end": "09:00"}, "frequency_cap": {"max": 4, "per_days": 7}},
        "goal": {"event": visit_event, "exit_on_goal": False},
        "start": "day2",
        "nodes": nodes,
        "edges": edges,
    }
    return {"segment": audience, "journey": journey}


def cadence(
    start: str | None = None, every_days: int = 3, content: str = "小活动：今日会员签到送积分"
) -> dict[str, Any]:
    """A small activity every ``every_days`` days for the audience (customers with an order)."""
    audience = {"kind": "orders", "measure": "count", "op": "gte", "value": 1}
    journey = {
        "trigger": {
            "kind": "cadence",
            "every_days": every_days,
            "start": start or brand_today().isoformat(),
            "segment_id": SEGMENT_PLACEHOLDER,
        },
        "reentry": {"mode": "after_exit"},
        "guards": {"quiet_hours": {"start": "21:00", "end": "09:00"}, "channel_daily_caps": {"wecom_mass": 1}},
        "start": "activity",
        "nodes": [
            {
                "id": "activity",
                "kind": "action",
                "label": "小活动",
                "action": {"type": "send", "channel": "wecom_mass", "content": content},
            },
            {"id": "end", "kind": "exit"},
        ],
        "edges": [{"from": "activity", "to": "end"}],
    }
    return {"segment": audience, "journey": journey}


def campaign_dates(
    start: date, days: int, warmup_days: int = 10, every_days: int = 5, encore_days: int = 2
) -> dict[str, Any]:
    """The campaign calendar: warm-up day, activity days during the campaign, encore days after it."""
    end = start + timedelta(days=days)
    return {
        "warmup": start - timedelta(days=warmup_days),
        "during": [start + timedelta(days=every_days * i) for i in range(math.ceil(days / every_days))],
        "encore": [end + timedelta(days=i) for i in range(encore_days)],
    }


def campaign(start: str, days: int = 15, name: str = "大促", at: str = "10:00") -> dict[str, Any]:
    """Big campaign from ``start`` (YYYY-MM-DD) for ``days`` days: warm-up 10 days before, a small activity every
    5 days during, a 2-day encore after (each a send at ``at`` local time)."""
    try:
        first = date.fromisoformat(start)
    except ValueError:
        raise TypeError(f"start {start!r} is not a date (YYYY-MM-DD)") from None
    if not 1 <= days <= 90:
        raise TypeError("days must be 1–90")
    cal = campaign_dates(first, days)
    hh, mm = (int(x) for x in at.split(":"))
    steps: list[tuple[str, date, str, str]] = [
        ("warmup", cal["warmup"], "预热", f"{name}10天后开启，提前加购享双倍积分！")
    ]
    steps += [
        (f"during{i + 1}", d, f"活动 {i + 1}", f"{name}进行中：今日限时小活动第{i + 1}场")
        for i, d in enumerate(cal["during"])
    ]
    steps += [
        (f"encore{i + 1}", d, f"返场 {i + 1}", f"{name}返场第{i + 1}天，最后机会！")
        for i, d in enumerate(cal["encore"])
    ]
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    prev: str | None = None
    for sid, day, label, text in steps:
        until = datetime.combine(day, time(hh, mm)).isoformat(timespec="minutes")
        nodes += [
            {
                "id": f"until_{sid}",
                "kind": "wait",
                "label": f"{label} {day.isoformat()}",
                "mode": "until_date",
                "until": until,
            },
            {
                "id": sid,
                "kind": "action",
                "label": label,
                "action": {"type": "send", "channel": "wecom_mass", "content": text},
            },
        ]
        if prev:
            edges.append({"from": prev, "to": f"until_{sid}"})
        edges.append({"from": f"until_{sid}", "to": sid})
        prev = sid
    nodes.append({"id": "end", "kind": "exit"})
    edges.append({"from": prev, "to": "end"})
    audience = {"kind": "orders", "measure": "count", "op": "gte", "value": 1}
    journey = {
        "trigger": {"kind": "segment", "segment_id": SEGMENT_PLACEHOLDER, "on": "entry", "include_current": True},
        "reentry": {"mode": "once"},
        "guards": {"quiet_hours": {"start": "21:00", "end": "09:00"}, "channel_daily_caps": {"wecom_mass": 1}},
        "goal": {"event": "Order Completed", "exit_on_goal": False},
        "start": "until_warmup",
        "nodes": nodes,
        "edges": edges,
    }
    return {"segment": audience, "journey": journey}


SEED_TEMPLATES = {
    "insurance_birthday": "保险生日关怀：生日前 15 天按保障缺口推荐产品，顾问在客户活跃时段致电",
    "dental_no_show": "口腔预约未到店：第 2 天到店礼、一周内改约；引流客二次项目，高客单关怀 + 转介绍",
    "cadence": "节奏运营：每 3 天一次小活动",
    "campaign": "大促节奏：提前 10 天预热、活动期每 5 天小活动、结束后 2 天返场",
}
