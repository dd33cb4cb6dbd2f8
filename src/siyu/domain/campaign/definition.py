"""The fission campaign definition (裂变活动): kind, rules, carrier, anti-abuse, budget, regions, variants, pilot and
per-guide targets. Pure pydantic (no I/O), versioned JSON (``schema_version``).

Kinds (seed 001's three families):
- ``assist`` 众筹式 (助力 / 任务宝 / 砍价 / 拆红包): the sharer reaches tiers (阶梯奖励) as friends help; each
  tier gives a reward or lets the sharer choose one from a pool (奖励池); helpers may start their
  own (循环裂变, ``cyclic``).
- ``group_buy`` 互惠式 (拼团 / 组队): a team of ``team_size`` completes within ``team_hours``; the initiator and the
  joiners get different rewards (异化奖励).
- ``gift`` 共享式 (赠送 / 好友卡 / 赠一得一): a giver sends a reward to a friend; optionally the giver gets a bonus when
  the friend claims or redeems it.
Rewards are referred to by id (``siyu.services.rewards``); the service checks they exist.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SCHEMA_VERSION = 1
DEFAULT_MAX_THRESHOLD = 15  # seed 001: an assist threshold above ~15 friends kills participation
HARD_MAX_THRESHOLD = 100
KINDS = ("assist", "group_buy", "gift")
CARRIERS = ("wecom_guide", "wecom_group", "official_account", "h5")
STATUSES = ("draft", "pilot", "live", "ended")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$")
Kind = Literal["assist", "group_buy", "gift"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _reward_id(v: str) -> str:
    if not _ID.match(v):
        raise ValueError(f"{v!r} is not a reward id; use the id shown by /api/rewards (letters, digits, _ and -)")
    return v


# ---- kinds -----------------------------------------------------------------------------------------------


class Tier(_Model):
    """A step of an assist: at ``threshold`` counted helps the sharer gets ``reward_id`` — or chooses one of
    ``pool`` (奖励池)."""

    threshold: int = Field(ge=1, le=HARD_MAX_THRESHOLD)
    reward_id: str | None = None
    pool: list[str] = Field(default_factory=list, max_length=10)
    name: str = Field(default="", max_length=60)

    @model_validator(mode="after")
    def _one_reward(self) -> Tier:
        if bool(self.reward_id) == bool(self.pool):
            raise ValueError("[reward_id] give either reward_id (one reward) or pool (a list to choose from)")
        for r in [self.reward_id, *self.pool]:
            if r:
                _reward_id(r)
        if len(set(self.pool)) != len(self.pool):
            raise ValueError("[pool] a reward is listed twice in the pool; list each once")
        return self

    def rewards(self) -> list[str]:
        return [self.reward_id] if self.reward_id else list(self.pool)


class AssistRules(_Model):
    """助力: ascending tiers, ``max_threshold`` (default 15, at most 100) bounds every threshold; ``cyclic``: a helper
    may start their own assist (循环裂变); ``helper_reward_id``: optional thank-you reward for each counted helper."""

    tiers: list[Tier] = Field(min_length=1, max_length=10)
    max_threshold: int = Field(default=DEFAULT_MAX_THRESHOLD, ge=1, le=HARD_MAX_THRESHOLD)
    cyclic: bool = True
    helper_reward_id: str | None = None

    @model_validator(mode="after")
    def _tiers(self) -> AssistRules:
        last = 0
        for i, t in enumerate(self.tiers):
            if t.threshold <= last:
                raise ValueError(f"[tiers.{i}.threshold] thresholds must rise tier by tier ({t.threshold} ≤ {last})")
            if t.threshold > self.max_threshold:
                raise ValueError(
                    f"[tiers.{i}.threshold] {t.threshold} is above max_threshold {self.max_threshold}; lower it or "
                    f"raise max_threshold (at most {HARD_MAX_THRESHOLD})"
                )
            last = t.threshold
        if self.helper_reward_id:
            _reward_id(self.helper_reward_id)
        return self


class GroupBuyRules(_Model):
    """拼团 / 组队: ``team_size`` people (the initiator included) within ``team_hours`` of the team's start."""

    team_size: int = Field(ge=2, le=50)
    team_hours: int = Field(default=24, ge=1, le=720)
    initiator_reward_id: str
    joiner_reward_id: str
    max_teams_per_person: int = Field(default=1, ge=1, le=20)

    @field_validator("initiator_reward_id", "joiner_reward_id")
    @classmethod
    def _rid(cls, v: str) -> str:
        return _reward_id(v)


class GiftRules(_Model):
    """赠送 / 好友卡: the giver sends ``reward_id`` to a friend (claimable for ``claim_hours``);
    ``giver_bonus_reward_id`` goes to the giver when the friend claims (``bonus_on: claim``) or redeems
    (``redeem``) it."""

    reward_id: str
    max_gifts_per_giver: int = Field(default=1, ge=1, le=100)
    claim_hours: int = Field(default=72, ge=1, le=720)
    giver_bonus_reward_id: str | None = None
    bonus_on: Literal["claim", "redeem"] = "redeem"

    @field_validator("reward_id", "giver_bonus_reward_id")
    @classmethod
    def _rid(cls, v: str | None) -> str | None:
        return _reward_id(v) if v else v


# ---- common ----------------------------------------------------------------------------------------------


class Carrier(_Model):
    """承接载体: the private-domain action after which a help counts. ``wecom_guide``: add the sharer's guide through
    the channel code ``channel_code_id``; ``wecom_group``: join ``chat_id`` (confirmed by WeCom's group add_member
    callback); ``official_account``: follow ``appid`` — refused by ``parse_campaign`` until the official account
    connector exists; ``h5``: none (a help counts at once)."""

    kind: Literal["wecom_guide", "wecom_group", "official_account", "h5"] = "h5"
    channel_code_id: int | None = Field(default=None, ge=1)
    chat_id: str = Field(default="", max_length=128)
    appid: str = Field(default="", max_length=64)

    @model_validator(mode="after")
    def _needs(self) -> Carrier:
        if self.kind == "wecom_guide" and self.channel_code_id is None:
            raise ValueError("[channel_code_id] the wecom_guide carrier needs the id of a channel code (渠道活码)")
        if self.kind == "wecom_group" and not self.chat_id:
            raise ValueError("[chat_id] the wecom_group carrier needs the group's chat_id")
        if self.kind == "official_account" and not self.appid:
            raise ValueError("[appid] the official_account carrier needs the account's appid")
        return self


class AntiAbuse(_Model):
    """One help per person per campaign and no self-help always hold. Velocity limits count help attempts;
    ``min_keep_days``: a helper who deletes the guide within N days stops counting, and a reward it completed is
    clawed back per ``clawback`` (``none``; ``unused``: only rewards not used yet; ``always``)."""

    device_per_day: int = Field(default=3, ge=1, le=1000)
    ip_per_hour: int = Field(default=30, ge=1, le=100_000)
    person_per_day: int = Field(default=10, ge=1, le=1000)
    min_keep_days: int = Field(default=0, ge=0, le=90)
    clawback: Literal["none", "unused", "always"] = "unused"


class Variant(_Model):
    """An A/B arm: overrides of the tiers (threshold/reward), the group-buy size/rewards, the gift reward, the
    poster (a ``siyu.domain.poster`` template, checked by ``parse_campaign``) and the copy; ``weight`` shares
    traffic (assignment hashes person + campaign, so it is stable)."""

    id: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_\-]+$")
    weight: int = Field(default=1, ge=0, le=1000)
    tiers: list[Tier] | None = Field(default=None, max_length=10)
    team_size: int | None = Field(default=None, ge=2, le=50)
    initiator_reward_id: str | None = None
    joiner_reward_id: str | None = None
    gift_reward_id: str | None = None
    poster: dict[str, Any] | None = None
    title: str = Field(default="", max_length=100)
    copy_text: str = Field(default="", max_length=1000)


class Pilot(_Model):
    """前期验证: in ``pilot`` status only members of ``segment_id`` and/or ``percent`` % of people (by hash) may
    join."""

    segment_id: str | None = Field(default=None, max_length=64)
    percent: float | None = Field(default=None, gt=0, le=100)

    @model_validator(mode="after")
    def _some(self) -> Pilot:
        if self.segment_id is None and self.percent is None:
            raise ValueError("[percent] a pilot names a segment_id or a percent of people (or both)")
        return self


class GuideTarget(_Model):
    """KPIs of one guide in this campaign (0 = no target)."""

    guide_id: str = Field(min_length=1, max_length=64)
    participants: int = Field(default=0, ge=0)
    new_customers: int = Field(default=0, ge=0)
    conversions: int = Field(default=0, ge=0)
    gmv: float = Field(default=0, ge=0)


class CampaignDefinition(_Model):
    """A whole campaign. ``starts_at``/``ends_at`` are local times in ``timezone`` (naive) or aware times.
    ``poster``: the participants' poster template (variants may override it; none: the default poster)."""

    schema_version: int = SCHEMA_VERSION
    kind: Kind
    name: str = Field(min_length=1, max_length=200)
    title: str = Field(default="", max_length=100)
    description: str = Field(default="", max_length=4000)
    starts_at: datetime
    ends_at: datetime
    timezone: str = "Asia/Shanghai"
    assist: AssistRules | None = None
    group_buy: GroupBuyRules | None = None
    gift: GiftRules | None = None
    carrier: Carrier = Field(default_factory=Carrier)
    anti_abuse: AntiAbuse = Field(default_factory=AntiAbuse)
    budget: float | None = Field(default=None, gt=0, description="max total reward cost (None: no cap)")
    regions: list[str] = Field(default_factory=list, max_length=40, description="allowed provinces (empty: all)")
    variants: list[Variant] = Field(default_factory=list, max_length=10)
    pilot: Pilot | None = None
    guide_targets: list[GuideTarget] = Field(default_factory=list, max_length=5000)
    max_depth: int = Field(default=20, ge=0, le=1000, description="invite depth beyond which joins stop (0: seeds)")
    poster: dict[str, Any] | None = Field(
        default=None, description="the campaign's poster template (siyu.domain.poster); a variant's poster overrides it"
    )

    @model_validator(mode="after")
    def _sections(self) -> CampaignDefinition:
        if getattr(self, self.kind) is None:
            raise ValueError(f"[{self.kind}] a {self.kind} campaign needs its '{self.kind}' rules object")
        others = [k for k in KINDS if k != self.kind and getattr(self, k) is not None]
        if others:
            raise ValueError(f"[{others[0]}] a {self.kind} campaign has no '{others[0]}' rules; remove them")
        if self.ends_at <= self.starts_at:
            raise ValueError("[ends_at] the campaign must end after it starts")
        ids = [v.id for v in self.variants]
        if len(set(ids)) != len(ids):
            raise ValueError("[variants] two variants share an id; give each a distinct id")
        if self.variants and sum(v.weight for v in self.variants) == 0:
            raise ValueError("[variants] all weights are 0; give at least one variant a weight ≥ 1")
        guides = [g.guide_id for g in self.guide_targets]
        if len(set(guides)) != len(guides):
            raise ValueError("[guide_targets] a guide has two targets; keep one per guide")
        for i, v in enumerate(self.variants):
            if v.tiers is not None and self.kind != "assist":
                raise ValueError(f"[variants.{i}.tiers] tiers apply to assist campaigns only")
            if (v.team_size or v.initiator_reward_id or v.joiner_reward_id) and self.kind != "group_buy":
                raise ValueError(f"[variants.{i}] team overrides apply to group_buy campaigns only")
            if v.gift_reward_id and self.kind != "gift":
                raise ValueError(f"[variants.{i}.gift_reward_id] applies to gift campaigns only")
            if v.tiers is not None and self.assist is not None:
                AssistRules(tiers=v.tiers, max_threshold=self.assist.max_threshold)  # same checks per variant
        return self

    # -- effective rules per variant -------------------------------------------------------------------------
    def variant(self, variant_id: str | None) -> Variant | None:
        return next((v for v in self.variants if v.id == variant_id), None)

    def tiers(self, variant_id: str | None = None) -> list[Tier]:
        """The assist tiers a participant of ``variant_id`` works towards."""
        v = self.variant(variant_id)
        if v is not None and v.tiers is not None:
            return list(v.tiers)
        return list(self.assist.tiers) if self.assist else []

    def team_size(self, variant_id: str | None = None) -> int:
        v = self.variant(variant_id)
        if v is not None and v.team_size:
            return v.team_size
        return self.group_buy.team_size if self.group_buy else 0

    def team_rewards(self, variant_id: str | None = None) -> tuple[str, str]:
        """(initiator reward, joiner reward) — 异化奖励."""
        assert self.group_buy is not None
        v = self.variant(variant_id)
        return (
            (v.initiator_reward_id if v and v.initiator_reward_id else self.group_buy.initiator_reward_id),
            (v.joiner_reward_id if v and v.joiner_reward_id else self.group_buy.joiner_reward_id),
        )

    def gift_reward(self, variant_id: str | None = None) -> str:
        assert self.gift is not None
        v = self.variant(variant_id)
        return v.gift_reward_id if v and v.gift_reward_id else self.gift.reward_id

    def reward_ids(self) -> list[str]:
        """Every reward id the campaign refers to (for the existence check)."""
        out: list[str] = []
        if self.assist:
            for t in self.assist.tiers:
                out += t.rewards()
            out += [self.assist.helper_reward_id] if self.assist.helper_reward_id else []
        if self.group_buy:
            out += [self.group_buy.initiator_reward_id, self.group_buy.joiner_reward_id]
        if self.gift:
            out += [self.gift.reward_id] + (
                [self.gift.giver_bonus_reward_id] if self.gift.giver_bonus_reward_id else []
            )
        for v in self.variants:
            for t in v.tiers or []:
                out += t.rewards()
            out += [r for r in (v.initiator_reward_id, v.joiner_reward_id, v.gift_reward_id) if r]
        return list(dict.fromkeys(out))
