"""Pure campaign rules: may this person help this sharer now (and if not, the reason in Chinese and English),
tiers reached, team complete, invite depth, deterministic variant and pilot assignment, campaign time window.
No I/O: the service feeds counts and attributes and acts on the answers."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from siyu.domain.campaign.definition import CampaignDefinition, Tier, Variant

# reason code → (中文, English): what the person sees when a help / join is refused
REASONS: dict[str, tuple[str, str]] = {
    "not_open": ("活动尚未开放", "The campaign is not open"),
    "not_started": ("活动还没开始，请稍后再来", "The campaign has not started yet"),
    "ended": ("活动已结束", "The campaign has ended"),
    "not_in_pilot": ("活动目前仅对部分用户开放", "The campaign is open to a pilot group only for now"),
    "self_help": ("不能为自己助力，请分享给好友", "You cannot help yourself; share it with a friend"),
    "already_helped": (
        "你已经为本活动助力过了，每人仅限一次",
        "You have already helped in this campaign (once per person)",
    ),
    "device_limit": ("该设备今日助力次数已达上限", "This device reached today's help limit"),
    "ip_limit": ("当前网络助力过于频繁，请稍后再试", "Too many helps from this network; try again later"),
    "person_limit": ("你今天的助力次数已达上限", "You reached today's help limit"),
    "region": ("你所在的地区不在本次活动范围内", "Your region is not part of this campaign"),
    "sharer_unknown": ("助力链接无效或已失效", "The help link is invalid or expired"),
    "sharer_done": ("好友的助力已完成，感谢支持", "Your friend's assist is already complete; thank you"),
    "depth_limit": ("本活动暂不支持继续发起", "This campaign cannot be started from here"),
    "carrier_left": ("你已删除导购好友，助力不再计入", "You removed the guide, so your help no longer counts"),
    "duplicate_person": ("同一用户的重复助力不计入", "A second help by the same person does not count"),
    "team_full": ("该团已满员", "This team is full"),
    "team_closed": ("该团已结束", "This team has closed"),
    "already_in_team": ("你已经在一个团里了", "You are already in a team"),
    "gift_limit": ("赠送次数已达上限", "You have sent all the gifts you can"),
    "gift_claimed": ("该礼物已被领取", "This gift has already been claimed"),
    "gift_expired": ("该礼物已过期", "This gift has expired"),
    "own_gift": ("不能领取自己送出的礼物", "You cannot claim your own gift"),
    "budget": ("奖励已发完", "The rewards have run out"),
    "reward_unavailable": ("奖励暂时无法发放", "The reward cannot be issued right now"),
}


@dataclass(frozen=True)
class Decision:
    """``ok`` or the refusal ``code`` with its messages."""

    ok: bool
    code: str = ""

    @property
    def zh(self) -> str:
        return REASONS[self.code][0] if self.code else ""

    @property
    def en(self) -> str:
        return REASONS[self.code][1] if self.code else ""

    def message(self, lang: str = "zh") -> str:
        return self.en if lang == "en" else self.zh


OK = Decision(True)


def refuse(code: str) -> Decision:
    if code not in REASONS:
        raise KeyError(code)
    return Decision(False, code)


def utc_naive(at: datetime, tz: str) -> datetime:
    """A campaign time (naive = local in ``tz``, or aware) as naive UTC, the way the state DB stores times."""
    aware = at if at.tzinfo else at.replace(tzinfo=ZoneInfo(tz))
    return aware.astimezone(UTC).replace(tzinfo=None)


def window(cd: CampaignDefinition, now: datetime) -> Decision:
    """Within start/end? ``now`` is naive UTC."""
    if now < utc_naive(cd.starts_at, cd.timezone):
        return refuse("not_started")
    if now >= utc_naive(cd.ends_at, cd.timezone):
        return refuse("ended")
    return OK


def open_for(status: str, cd: CampaignDefinition, now: datetime, in_pilot: bool) -> Decision:
    """May anyone act in the campaign now: live (or pilot and the person is in the pilot) and inside the window."""
    if status not in ("live", "pilot"):
        return refuse("ended" if status == "ended" else "not_open")
    if status == "pilot" and not in_pilot:
        return refuse("not_in_pilot")
    return window(cd, now)


@dataclass(frozen=True)
class HelpAttempt:
    """What the service knows when a person asks to help a sharer. Counts are attempts already made in the
    rolling windows (this one excluded)."""

    helper_keys: frozenset[str]  # the person: canonical customer id and/or identity keys
    sharer_keys: frozenset[str]
    already_helped: bool
    device_today: int
    ip_last_hour: int
    person_today: int
    region: str | None = None
    sharer_complete: bool = False


def may_help(cd: CampaignDefinition, a: HelpAttempt) -> Decision:
    """May this person help this sharer now? (the campaign being open is checked by ``open_for``)."""
    if a.helper_keys & a.sharer_keys:
        return refuse("self_help")
    if a.already_helped:
        return refuse("already_helped")
    rules = cd.anti_abuse
    if a.device_today >= rules.device_per_day:
        return refuse("device_limit")
    if a.ip_last_hour >= rules.ip_per_hour:
        return refuse("ip_limit")
    if a.person_today >= rules.person_per_day:
        return refuse("person_limit")
    if not region_allowed(cd, a.region):
        return refuse("region")
    if a.sharer_complete:
        return refuse("sharer_done")
    return OK


def region_allowed(cd: CampaignDefinition, region: str | None) -> bool:
    """Allowed provinces: empty list = all; an unknown region is refused when a list is set."""
    if not cd.regions:
        return True
    if not region:
        return False
    want = region.strip().removesuffix("省").removesuffix("市")
    return any(want == r.strip().removesuffix("省").removesuffix("市") for r in cd.regions)


def tiers_reached(tiers: Sequence[Tier], before: int, after: int) -> list[int]:
    """Indexes of the tiers crossed going from ``before`` to ``after`` counted helps."""
    return [i for i, t in enumerate(tiers) if before < t.threshold <= after]


def next_tier(tiers: Sequence[Tier], count: int) -> tuple[int, int] | None:
    """(index, helps still needed) of the next tier, None when all are reached."""
    for i, t in enumerate(tiers):
        if t.threshold > count:
            return i, t.threshold - count
    return None


def assist_complete(tiers: Sequence[Tier], count: int) -> bool:
    return bool(tiers) and count >= tiers[-1].threshold


def team_complete(size: int, members: int) -> bool:
    return members >= size


def child_depth(sharer_depth: int | None) -> int:
    """A seed participant (nobody's helper) has depth 0; one who joins from a sharer of depth d has d + 1."""
    return 0 if sharer_depth is None else sharer_depth + 1


def _unit(*parts: str) -> float:
    """A stable number in [0, 1) from the parts (sha256)."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_variant(variants: Sequence[Variant], person_key: str, campaign_id: str) -> str | None:
    """The variant of a person: deterministic (hash of person + campaign), in proportion to the weights."""
    total = sum(v.weight for v in variants)
    if not variants or total <= 0:
        return None
    x = _unit("variant", campaign_id, person_key) * total
    acc = 0.0
    for v in variants:
        acc += v.weight
        if x < acc:
            return v.id
    return variants[-1].id


def in_pilot_percent(percent: float, person_key: str, campaign_id: str) -> bool:
    """The person falls in the first ``percent`` % of the campaign's hash order (stable as percent grows)."""
    return _unit("pilot", campaign_id, person_key) * 100 < percent
