"""Channel codes (渠道活码), pure rules: the ``state`` that attributes an add, which guides a code shows today
(round-robin among guides under their daily cap, else the fallback), welcome templates and group-invite rules.

No I/O: services feed it counts and attributes and act on the answers.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from siyu.domain.brand_time import as_naive_utc, local_day
from siyu.errors import SiyuError

STATE_MAX = 30  # WeCom: add_contact_way.state ≤ 30 characters
STATE_PREFIX = "c"  # c<code no. in base 36>.<channel>.<campaign>.<guide>
WELCOME_WINDOW = 20.0  # seconds after the add event's CreateTime within which send_welcome_msg is accepted
WELCOME_MARGIN = 1.0  # do not start a send with less than this left (the call itself takes time)
MAX_CONTENT_BYTES = 4000
MAX_ATTACHMENTS = 9
MAX_JOIN_CHATS = 5  # groupchat/add_join_way: chat_id_list ≤ 5
MAX_GUIDES = 100  # add_contact_way: user ≤ 100
VARIABLES = ("name", "guide", "coupon")
_SAFE = re.compile(r"[^A-Za-z0-9_\-]")
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
ATTACHMENT_FIELDS: dict[str, tuple[str, ...]] = {
    "image": (),  # media_id or pic_url (checked below)
    "link": ("title", "url"),
    "miniprogram": ("title", "pic_media_id", "appid", "page"),
    "video": ("media_id",),
    "file": ("media_id",),
}


# -- state ----------------------------------------------------------------------------------------------------
def base36(n: int) -> str:
    if n < 0:
        raise ValueError("negative")
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = _ALPHABET[r] + out
        if n == 0:
            return out


@dataclass(frozen=True)
class ParsedState:
    """What a state says: the code number (exact) and channel/campaign/guide (possibly shortened)."""

    code_no: int
    channel: str
    campaign: str
    guide: str


def make_state(code_no: int, channel: str, campaign: str = "", guide: str = "") -> str:
    """``c<no>.<channel>.<campaign>.<guide>`` within 30 characters: the code number is kept whole (it identifies the
    code); the readable parts keep [A-Za-z0-9_-] and are shortened (guide first, then campaign, then channel)."""
    key = STATE_PREFIX + base36(code_no)
    parts = [_SAFE.sub("", p) for p in (channel, campaign, guide)]
    budget = STATE_MAX - len(key) - 3
    if budget < 0:
        raise SiyuError(f"code number {code_no} is too large for a 30-character state", field="state")
    for i in (2, 1, 0):  # shorten the guide, then the campaign, then the channel
        excess = sum(map(len, parts)) - budget
        if excess > 0:
            parts[i] = parts[i][: max(0, len(parts[i]) - excess)]
    state = ".".join([key, *parts])
    assert len(state) <= STATE_MAX
    return state


def parse_state(state: str) -> ParsedState | None:
    """The parts of a state made by ``make_state``; None for any other state (codes made elsewhere)."""
    bits = state.split(".")
    if len(bits) != 4 or not bits[0].startswith(STATE_PREFIX) or len(state) > STATE_MAX:
        return None
    no = bits[0][len(STATE_PREFIX) :]
    if not no or any(c not in _ALPHABET for c in no):
        return None
    return ParsedState(int(no, 36), bits[1], bits[2], bits[3])


# -- guides, caps and the fallback ----------------------------------------------------------------------------
@dataclass(frozen=True)
class GuideSlot:
    """A guide on a code: their WeCom userid and daily cap of new contacts (None = no cap)."""

    guide_id: str
    userid: str
    cap: int | None = None


def validate_slots(slots: Sequence[GuideSlot], fallback: GuideSlot | None) -> None:
    """At least one guide, no duplicates, caps ≥ 1, ≤ 100 members, a fallback not among the guides."""
    if not slots:
        raise SiyuError("a channel code needs at least one guide", field="guides")
    if len(slots) > MAX_GUIDES:
        raise SiyuError(f"a channel code takes at most {MAX_GUIDES} guides (WeCom's limit)", field="guides")
    seen: set[str] = set()
    for s in slots:
        if s.guide_id in seen:
            raise SiyuError(f"guide {s.guide_id!r} is listed twice", field="guides")
        seen.add(s.guide_id)
        if s.cap is not None and s.cap < 1:
            raise SiyuError(f"daily cap of {s.guide_id!r} must be ≥ 1 (or empty for no cap)", field="daily_cap")
    if fallback is not None and fallback.guide_id in seen:
        raise SiyuError("the fallback guide must not be one of the code's guides", field="fallback_guide_id")


def rotation(
    slots: Sequence[GuideSlot], adds_today: Mapping[str, int], fallback: GuideSlot | None
) -> tuple[list[str], str]:
    """The WeCom userids the code should show now, and why: the guides under their cap (WeCom alternates between
    them, round-robin), else the fallback guide; without a fallback, the guide with the highest cap keeps the
    code (a code never goes dead)."""
    open_ = [s.userid for s in slots if s.cap is None or adds_today.get(s.guide_id, 0) < s.cap]
    if open_:
        return open_, "round_robin" if len(open_) > 1 else "single"
    if fallback is not None:
        return [fallback.userid], "fallback"
    keep = max(slots, key=lambda s: (s.cap or 0, -slots.index(s)))
    return [keep.userid], "all_capped"


def business_day(at: datetime) -> date:
    """The day a naive-UTC (or aware) timestamp falls on in China (daily caps count per this day)."""
    return local_day(as_naive_utc(at))


# -- welcome --------------------------------------------------------------------------------------------------
def template_variables(template: str) -> list[str]:
    """The ``{variables}`` a template uses (``{{``/``}}`` are literal braces)."""
    try:
        return [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as err:
        raise SiyuError(f"welcome text has an unbalanced brace: {err}; write {{{{ for a literal {{", "text") from err


def validate_welcome(text: str, attachments: Sequence[Mapping[str, Any]], reserve: int = 0) -> None:
    """Only {name}, {guide}, {coupon}; ≤ 4000 bytes; ≤ 9 attachments (``reserve`` kept for the group invite),
    each a documented msgtype with its required fields; text or an attachment."""
    for v in template_variables(text):
        if v not in VARIABLES:
            raise SiyuError(
                f"unknown variable {{{v}}} in the welcome text; use {', '.join('{' + x + '}' for x in VARIABLES)}",
                field="text",
            )
    if len(text.encode()) > MAX_CONTENT_BYTES:
        raise SiyuError(f"welcome text is {len(text.encode())} bytes; WeCom takes ≤ {MAX_CONTENT_BYTES}", "text")
    if len(attachments) + reserve > MAX_ATTACHMENTS:
        extra = " (one is kept for the group invite)" if reserve else ""
        raise SiyuError(f"at most {MAX_ATTACHMENTS - reserve} attachments{extra}", field="attachments")
    for i, a in enumerate(attachments):
        kind = a.get("msgtype")
        if kind not in ATTACHMENT_FIELDS:
            raise SiyuError(
                f"attachments[{i}].msgtype must be one of {', '.join(ATTACHMENT_FIELDS)}", field="attachments"
            )
        body = a.get(str(kind))
        if not isinstance(body, Mapping):
            raise SiyuError(f"attachments[{i}] needs a {kind!r} object", field="attachments")
        need = ATTACHMENT_FIELDS[str(kind)] or ()
        missing = [f for f in need if not body.get(f)]
        if kind == "image" and not (body.get("media_id") or body.get("pic_url")):
            missing = ["media_id or pic_url"]
        if missing:
            raise SiyuError(f"attachments[{i}].{kind} lacks {', '.join(missing)}", field="attachments")


def render_welcome(template: str, name: str, guide: str, coupon: str = "") -> str:
    """The welcome text with {name} (the customer's WeChat name, else 朋友), {guide} and {coupon} filled."""
    values = {"name": name or "朋友", "guide": guide, "coupon": coupon}
    return template.format_map(values)


def welcome_left(create_time: float, now: float, window: float = WELCOME_WINDOW) -> float:
    """Seconds left to send the welcome of an add event made at ``create_time`` (negative: too late)."""
    return create_time + window - now


# -- group invite ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GroupRule:
    """Invite into ``chat_ids`` (≤ 5) when the customer's ``attribute`` is one of ``values`` (empty attribute:
    everyone — the default rule, put it last)."""

    chat_ids: tuple[str, ...]
    attribute: str = ""
    values: tuple[str, ...] = field(default_factory=tuple)
    name: str = ""


def validate_rules(rules: Sequence[GroupRule]) -> None:
    for i, r in enumerate(rules):
        if not 1 <= len(r.chat_ids) <= MAX_JOIN_CHATS:
            raise SiyuError(f"group_rules[{i}]: 1..{MAX_JOIN_CHATS} chat ids per rule (WeCom's limit)", "group_rules")
        if r.attribute and not r.values:
            raise SiyuError(f"group_rules[{i}]: give the values of {r.attribute!r} this rule matches", "group_rules")


def choose_group(rules: Sequence[GroupRule], attrs: Mapping[str, Any]) -> int | None:
    """Index of the first rule the customer's attributes match (a list attribute matches on any element)."""
    for i, r in enumerate(rules):
        if not r.attribute:
            return i
        have = attrs.get(r.attribute)
        vals = {str(v).strip().lower() for v in (have if isinstance(have, list | tuple | set) else [have]) if v}
        if vals & {v.strip().lower() for v in r.values}:
            return i
    return None
