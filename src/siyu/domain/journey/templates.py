"""Ready-made journeys from the seeds (pure: each returns the audience segment definition and the journey
definition, whose trigger names the segment once it is saved). ``siyu.services.journeys.templates`` saves both.

- ``win_back``: RFM 重要挽留 or a low P(alive) → the guide calls (task with a script) and a coupon is issued;
  10 % holdout measures the lift; goal: an order within the 14-day window.
- ``new_contact``: a new contact (joined within ``new_days``) → welcome + gift message, a tag per acquisition
  channel, a group invitation naming their city, and for 新客未购 after 3 days a first-purchase offer and a
  guide follow-up.
"""

from __future__ import annotations

from typing import Any

SEGMENT_PLACEHOLDER = "$segment"
GOAL_EVENT = "Order Completed"


def win_back(p_alive_below: float = 0.3, coupon: str = "挽留券 ¥30", holdout_percent: float = 10) -> dict[str, Any]:
    """RFM 重要挽留 or P(alive) < ``p_alive_below`` → guide task + coupon (with a holdout)."""
    audience = {
        "kind": "or",
        "conditions": [
            {"kind": "rfm", "classes": ["important_win_back"]},
            {"kind": "clv", "field": "p_alive", "op": "lt", "value": p_alive_below},
        ],
    }
    journey = {
        "trigger": {"kind": "segment", "segment_id": SEGMENT_PLACEHOLDER, "on": "entry", "include_current": True},
        "reentry": {"mode": "after_days", "days": 90},
        "guards": {"frequency_cap": {"max": 3, "per_days": 7}, "quiet_hours": {"start": "21:00", "end": "09:00"}},
        "goal": {"event": GOAL_EVENT},
        "start": "ab",
        "nodes": [
            {
                "id": "ab",
                "kind": "experiment",
                "label": "挽留 vs 留出组",
                "arms": [{"name": "win_back", "weight": 1}],
                "holdout_percent": holdout_percent,
            },
            {
                "id": "call",
                "kind": "action",
                "label": "导购电话回访",
                "action": {
                    "type": "task",
                    "task_kind": "call",
                    "title": "重要挽留客户回访",
                    "script": "您好，好久不见！最近有新品和老客专属优惠，想听听您对我们的建议。",
                    "due_hours": 48,
                },
            },
            {"id": "coupon", "kind": "action", "label": "发挽留券", "action": {"type": "coupon", "coupon": coupon}},
            {"id": "window", "kind": "wait", "label": "观察 14 天", "minutes": 14 * 24 * 60},
            {"id": "end", "kind": "exit"},
        ],
        "edges": [
            {"from": "ab", "to": "call", "branch": "win_back"},
            {"from": "ab", "to": "window", "branch": "holdout"},
            {"from": "call", "to": "coupon"},
            {"from": "coupon", "to": "window"},
            {"from": "window", "to": "end"},
        ],
    }
    return {"segment": audience, "journey": journey}


def new_contact(channels: list[str], new_days: int = 7, gift: str = "新人礼") -> dict[str, Any]:
    """New contacts → welcome + gift, tag by channel, group invitation by city, first-purchase offer."""
    audience = {"kind": "lifecycle", "stages": ["new_no_purchase", "new_purchased"], "new_days": new_days}
    branches = [{"name": ch, "condition": {"kind": "channel", "channels": [ch]}} for ch in channels[:19]]
    nodes: list[dict[str, Any]] = [
        {
            "id": "welcome",
            "kind": "action",
            "label": "欢迎语 + 新人礼",
            "action": {
                "type": "send",
                "channel": "wecom_1to1",
                "content": f"欢迎加入！为您准备了{gift}，回复「礼物」领取。",
            },
        },
        {
            "id": "by_channel",
            "kind": "condition",
            "label": "按渠道打标签",
            "branches": branches or [{"name": "any", "condition": {"kind": "channel", "channels": ["-"]}}],
        },
    ]
    edges: list[dict[str, Any]] = [{"from": "welcome", "to": "by_channel"}]
    for b in nodes[1]["branches"]:
        tag_id = f"tag_{b['name']}"[:64].replace(":", "_")
        nodes.append({"id": tag_id, "kind": "action", "action": {"type": "tag", "tag": f"渠道:{b['name']}"}})
        edges += [{"from": "by_channel", "to": tag_id, "branch": b["name"]}, {"from": tag_id, "to": "invite"}]
    edges.append({"from": "by_channel", "to": "invite", "branch": "else"})
    nodes += [
        {
            "id": "invite",
            "kind": "action",
            "label": "同城社群邀请",
            "action": {
                "type": "send",
                "channel": "wecom_1to1",
                "template": "group_invite_by_city",
                "content": "{city}的会员群每周有专属活动，点此加入：{group_link}",
            },
        },
        {"id": "wait3", "kind": "wait", "minutes": 3 * 24 * 60},
        {
            "id": "bought",
            "kind": "condition",
            "label": "新客未购？",
            "branches": [
                {
                    "name": "no_purchase",
                    "condition": {"kind": "lifecycle", "stages": ["new_no_purchase"], "new_days": new_days + 3},
                }
            ],
        },
        {"id": "offer", "kind": "action", "label": "首购券", "action": {"type": "coupon", "coupon": "首购立减 ¥20"}},
        {
            "id": "follow",
            "kind": "action",
            "label": "导购跟进",
            "action": {
                "type": "task",
                "task_kind": "message",
                "title": "新客首购跟进",
                "due_hours": 24,
                "script": "了解需求，推荐入门款，提醒首购券 3 天内有效。",
            },
        },
        {"id": "end", "kind": "exit"},
    ]
    edges += [
        {"from": "invite", "to": "wait3"},
        {"from": "wait3", "to": "bought"},
        {"from": "bought", "to": "offer", "branch": "no_purchase"},
        {"from": "bought", "to": "end", "branch": "else"},
        {"from": "offer", "to": "follow"},
        {"from": "follow", "to": "end"},
    ]
    journey = {
        "trigger": {"kind": "segment", "segment_id": SEGMENT_PLACEHOLDER, "on": "entry", "include_current": True},
        "reentry": {"mode": "once"},
        "guards": {"quiet_hours": {"start": "21:00", "end": "09:00"}},
        "goal": {"event": GOAL_EVENT, "exit_on_goal": False},
        "start": "welcome",
        "nodes": nodes,
        "edges": edges,
    }
    return {"segment": audience, "journey": journey}


TEMPLATES = {
    "win_back": "RFM 重要挽留 / 低 P(alive) → 导购任务 + 挽留券",
    "new_contact": "新客欢迎、渠道标签、社群邀请、首购券",
}
