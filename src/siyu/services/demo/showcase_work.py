"""Showcase guide work of the demo brand through its services: the scripts library, follow-ups with reminders and
sales stages, the customer pool, Moments tasks, journeys from templates and channel codes (WeCom)."""

from __future__ import annotations

import random
from datetime import UTC, timedelta
from typing import Any

from sqlalchemy import func, select

from siyu.connectors.wecom.client import WeComClient
from siyu.services import scripts
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.guide_work import behavior, followups, moments, pool
from siyu.services.journeys import definitions as journey_defs
from siyu.services.journeys import executor, triggers
from siyu.services.journeys.templates import create_from_template
from siyu.services.wecom import channel_codes
from siyu.stores.state.guide_work_models import GuideBehaviorDayRow
from siyu.stores.state.models import utcnow

IMG = "https://static.lanyan.example.com/img"
SCRIPTS: dict[str, list[dict[str, Any]]] = {
    "开场白": [
        {"kind": "text", "title": "新客问候", "body": "{name}您好，我是澜颜美妆的{guide}，以后护肤上的问题随时找我～"},
        {"kind": "text", "title": "门店到访后", "body": "{name}，今天在门店试的精华感觉怎么样？有任何不适随时告诉我。"},
        {"kind": "text", "title": "节日问候", "body": "{name}，双十二快到了，给您留了一份会员专属礼，有空来店里坐坐～"},
        {"kind": "image", "title": "会员权益一览", "body": "", "payload": {"image_url": f"{IMG}/member-benefits.png"}},
    ],
    "产品介绍": [
        {"kind": "text", "title": "玻尿酸精华卖点", "body": "三重分子玻尿酸，早晚各 2–3 滴，干皮换季必备。"},
        {"kind": "text", "title": "防晒选择", "body": "通勤选 SPF30 轻薄款，户外选 SPF50+ 防水款，记得 2 小时补涂。"},
        {
            "kind": "link",
            "title": "敏感肌护理指南",
            "body": "敏感肌三步护理",
            "payload": {"url": "https://lanyan.example.com/guide/sensitive", "image_url": f"{IMG}/sensitive.png"},
        },
        {
            "kind": "miniprogram",
            "title": "小程序商城 · 修护面霜",
            "body": "",
            "payload": {
                "appid": "wx6a1b2c3d4e5f6a7b",
                "page": "pages/product/index?sku=cream",
                "image_url": f"{IMG}/cream.png",
            },
        },
        {
            "kind": "file",
            "title": "秋冬护肤手册 PDF",
            "body": "",
            "payload": {"url": "https://lanyan.example.com/files/autumn.pdf", "file_name": "秋冬护肤手册.pdf"},
        },
    ],
    "售后": [
        {
            "kind": "text",
            "title": "物流查询",
            "body": "{name}您好，您的订单已发出，物流单号稍后发您，预计 2–3 天送达。",
        },
        {
            "kind": "text",
            "title": "过敏处理",
            "body": "先停用并用清水洗净，冷敷缓解；持续不适请拍照发我，我们安排退换。",
        },
        {
            "kind": "text",
            "title": "退换货说明",
            "body": "未拆封 7 天无理由退换；已拆封如有质量问题，凭订单号联系我处理。",
        },
    ],
}
FOLLOWUP_NOTES = (
    ("call", "电话回访：对精华的保湿效果满意，想了解面霜"),
    ("message", "企微沟通：咨询双十二活动，已发优惠说明"),
    ("visit", "到店试用修护面霜，皮肤偏干，推荐搭配精华"),
    ("message", "发送防晒选择话术，客户计划下周购买"),
    ("call", "售后回访：物流已签收，使用无不适"),
    ("other", "生日前一周，准备生日礼"),
)
MOMENT_TITLE = "双十二预热：会员专享面膜礼盒"
MOMENT_TEXT = "双十二会员专享：三人拼团免费领面膜礼盒，到店再送精华小样一份。名额有限，私信我预留～"


def scripts_library(ctx: Context, operator: User, guides: list[User], customers: dict[str, list[str]]) -> int:
    """3 folders, 12 scripts, uses by the guides (sidebar / copy) for their own customers."""
    have = {f["name"] for f in scripts.list_folders(ctx, operator)}
    if "开场白" in have:
        return 0
    rng = random.Random(12)
    made = 0
    for sort, (folder, items) in enumerate(SCRIPTS.items()):
        fid = scripts.create_folder(ctx, operator, folder, sort=sort)["id"]
        for it in items:
            sid = scripts.create_script(
                ctx, operator, it["kind"], it["title"], it["body"], it.get("payload"), fid, keywords=folder
            )["id"]
            made += 1
            for g in guides:
                own = customers.get(g.guide_id or "", [])
                for _ in range(rng.choice((0, 0, 1, 2, 4, 7)) if own else 0):
                    channel = rng.choice(("sidebar", "sidebar", "copy"))
                    scripts.record_use(ctx, g, sid, rng.choice(own), channel=channel)
    return made


def followup_records(ctx: Context, guides: list[User], customers: dict[str, list[str]]) -> int:
    """Follow-ups by guide1..3 with sales stages; most set the next follow-up (some due today or overdue)."""
    rng = random.Random(7)
    now = utcnow().replace(tzinfo=UTC)  # aware: followups read naive times as brand-local
    made = 0
    for g in guides[:3]:
        if followups.list_followups(ctx, g)["total"]:
            continue
        stages = ("初次接触", "需求确认", "方案", "成交", "复购")
        for i, cid in enumerate(customers.get(g.guide_id or "", [])[:6]):
            kind, note = FOLLOWUP_NOTES[i % len(FOLLOWUP_NOTES)]
            nxt = None if i % 5 == 4 else now + timedelta(hours=rng.choice((-20, -3, 4, 26, 50, 98, 170)))
            followups.record(ctx, g, cid, kind, note, next_at=nxt, stage=stages[min(i % 7, 4)])
            made += 1
    return made


def customer_pool(ctx: Context, operator: User, lead_ids: list[str]) -> dict[str, int]:
    """About 40 leads without a WeCom relation enter the pool; 15 are assigned round-robin to guides 1–3."""
    if not lead_ids or pool.list_leads(ctx, operator, status="all")["total"]:
        return {}
    sources = ("import", "form", "campaign")
    added = 0
    for i, src in enumerate(sources):
        part = lead_ids[i::3]
        if not part:
            continue
        added += int(pool.add(ctx, operator, part, source=src, reason=f"演示：{src} 线索")["added"])
    got = pool.assign(ctx, operator, "round_robin", lead_ids[:15], ["g01", "g02", "g03"], "演示：按轮流规则分配")
    return {"leads": added, "assigned": int(got["assigned"])}


def moments_task(ctx: Context, operator: User, client: WeComClient) -> int:
    """A Moments task to every guide; seven of the twelve have posted it."""
    if any(t["title"] == MOMENT_TITLE for t in moments.list_tasks(ctx, operator)):
        return 0
    task = moments.publish(ctx, operator, client, MOMENT_TITLE, MOMENT_TEXT)
    for _ in range(20):
        if task["moment_id"]:
            break
        task = moments.refresh(ctx, operator, task["id"], client)
    if task["moment_id"]:
        posted = {str(g["userid"]) for g in task["guides"][:7]}
        moments.refresh(ctx, operator, task["id"], client, posted={task["moment_id"]: posted})
    return 1


JOURNEYS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("win_back", "沉睡客户挽回（电话+挽留券）", {}),
    ("new_contact", "新客欢迎与首购转化", {"new_days": 30}),
)


def journeys(ctx: Context, operator: User) -> int:
    """Two journeys from templates, published; their audiences enter and a first batch runs (guides get tasks)."""
    have = {j.name for j in journey_defs.list_journeys(ctx, operator)}
    made = 0
    for template, name, params in JOURNEYS:
        if name in have:
            continue
        j = create_from_template(ctx, operator, template, name, params)
        journey_defs.publish(ctx, operator, j.id)
        made += 1
    if made:  # enter the audiences and run one batch, so guides have tasks; the scheduler does the rest
        triggers.poll_triggers(ctx, brand_id=operator.brand_id)
        for _ in range(4):  # entry → split → the guide's task
            executor.run_due(ctx, limit=300)
    return made


CODES = (
    (
        "门店收银台",
        "ch_store",
        ["g01", "g02"],
        "{name}您好，我是{guide}，欢迎来到澜颜美妆！送您{coupon}，到店出示即可使用。",
    ),
    (
        "包裹卡 · 天猫订单",
        "ch_parcel",
        ["g03", "g04", "g05"],
        "{name}您好，感谢购买澜颜！我是您的专属顾问{guide}，{coupon}已放入您的账户。",
    ),
)


def channel_code_set(ctx: Context, brand_id: str, client: WeComClient) -> int:
    """Two channel codes (渠道活码) with welcome messages and a first-visit coupon."""
    have = {c["name"] for c in channel_codes.list_codes(ctx, brand_id)}
    made = 0
    for name, channel, guide_ids, text in CODES:
        if name in have:
            continue
        spec = channel_codes.CodeSpec(
            name=name,
            channel_id=channel,
            guides=[{"guide_id": g, "cap": 200} for g in guide_ids],
            welcome={"text": text, "coupon": {"id": "cp-new", "title": "新人礼券"}},
        )
        channel_codes.create_code(ctx, brand_id, spec, "operator", client)
        made += 1
    return made


def guide_behavior(ctx: Context, brand_id: str, client: WeComClient) -> int:
    """The guides' 联系客户统计 read from WeCom (the local server simulates them) for as far back as WeCom answers,
    180 days: the scorecard's reply share, first-reply minutes and deletions. Returns the rows stored (0 when the
    brand has some already)."""
    with ctx.sessions() as s:
        have = s.scalar(select(func.count()).where(GuideBehaviorDayRow.brand_id == brand_id))
    if have:
        return 0
    return int(behavior.sync(ctx, brand_id, client, days=180)["rows"])
