"""The suggested next action for a guide, from one customer's state (pure rules, no I/O).

Rules, first match wins (the rest are returned too, in order, as alternatives):

1. ``overdue_task``  — an open task is past due: do it first (the journey already decided what to do).
2. ``relation_lost`` — no active WeCom relation with any guide: the customer deleted or was transferred away;
   reach them through another channel, do not message in WeCom.
3. ``win_back``      — bought before and P(alive) < 0.3 (CLV model), or RFM class ``*_win_back``: send care and
   an offer that brings them back.
4. ``welcome``       — relation added within the last 3 days and no order: introduce yourself and the first-order
   benefit.
5. ``first_order``   — AIPL stage A or I (aware / interested, no purchase yet): answer questions, recommend a
   product, share a first-order offer.
6. ``second_order``  — exactly one order, 7..60 days ago: suggest a second purchase (repeat buyers are worth the
   most; lifecycle ``*_purchased_once``).
7. ``vip_care``      — RFM class ``important_value`` or predicted CLV in the brand's top band: personal care,
   early access, no discount needed.
8. ``keep_in_touch`` — otherwise: a light, useful touch (content, not promotion).

Each suggestion names a ``script_hint`` — a keyword the sidebar uses to search the scripts library.
"""

from __future__ import annotations

from dataclasses import dataclass, field

WIN_BACK_P_ALIVE = 0.3
WELCOME_DAYS = 3
SECOND_ORDER_DAYS = (7, 60)


@dataclass(frozen=True)
class CustomerState:
    """What the rules look at (None = unknown)."""

    has_active_relation: bool = True
    days_since_added: int | None = None
    orders: int = 0
    days_since_last_order: int | None = None
    rfm_class: str | None = None
    aipl_stage: str | None = None
    lifecycle_stage: str | None = None
    p_alive: float | None = None
    clv_top: bool = False  # predicted CLV in the brand's top band
    overdue_tasks: int = 0


@dataclass(frozen=True)
class Suggestion:
    code: str
    zh: str
    en: str
    script_hint: str
    why: list[str] = field(default_factory=list)


TEXTS: dict[str, tuple[str, str, str]] = {
    "overdue_task": ("先完成逾期任务", "Do the overdue task first", "任务"),
    "relation_lost": (
        "客户已不是好友：通过短信/电话等其他渠道联系",
        "Not a WeCom contact any more: use SMS/phone",
        "召回",
    ),
    "win_back": ("流失风险高：发送关怀与回归优惠", "At risk of leaving: send care and a come-back offer", "召回"),
    "welcome": (
        "新好友：自我介绍并告知首单福利",
        "New contact: introduce yourself and the first-order benefit",
        "欢迎",
    ),
    "first_order": ("有兴趣未购买：答疑并推荐首单", "Interested, no purchase yet: answer and recommend", "首单"),
    "second_order": ("只买过一次：引导复购", "Bought once: suggest a second purchase", "复购"),
    "vip_care": ("高价值客户：专属关怀", "High-value customer: personal care", "关怀"),
    "keep_in_touch": ("保持联系：分享有用内容", "Keep in touch: share something useful", "日常"),
}


def _make(code: str, why: list[str]) -> Suggestion:
    zh, en, hint = TEXTS[code]
    return Suggestion(code, zh, en, hint, why)


def suggest(s: CustomerState) -> list[Suggestion]:
    """Every rule that applies, best first; never empty (``keep_in_touch`` closes the list)."""
    out: list[Suggestion] = []
    if s.overdue_tasks > 0:
        out.append(_make("overdue_task", [f"overdue_tasks={s.overdue_tasks}"]))
    if not s.has_active_relation:
        out.append(_make("relation_lost", ["no active relation"]))
    at_risk = s.orders > 0 and s.p_alive is not None and s.p_alive < WIN_BACK_P_ALIVE
    if at_risk or (s.rfm_class or "").endswith("_win_back"):
        out.append(_make("win_back", [f"p_alive={s.p_alive}" if at_risk else f"rfm_class={s.rfm_class}"]))
    if s.orders == 0 and s.days_since_added is not None and s.days_since_added <= WELCOME_DAYS:
        out.append(_make("welcome", [f"days_since_added={s.days_since_added}"]))
    if s.orders == 0 and s.aipl_stage in ("A", "I"):
        out.append(_make("first_order", [f"aipl_stage={s.aipl_stage}"]))
    lo, hi = SECOND_ORDER_DAYS
    if s.orders == 1 and s.days_since_last_order is not None and lo <= s.days_since_last_order <= hi:
        out.append(_make("second_order", [f"days_since_last_order={s.days_since_last_order}"]))
    if s.rfm_class == "important_value" or s.clv_top:
        out.append(_make("vip_care", ["rfm_class=important_value" if s.rfm_class == "important_value" else "clv_top"]))
    out.append(_make("keep_in_touch", []))
    return out
