"""State tables of fission campaigns (裂变活动): campaigns and their versions, participants (the invite tree),
helps (with state and reason), the keys that make one help per person, teams and members, gifts, the rewards a
campaign issued (idempotency per campaign + participant + tier), and visit counters. Schema: Alembic 0010.

Traceability: every participant and help row carries campaign, variant, channel, platform, sharer, depth and guide.
Times are naive UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.stores.state.models import Base, utcnow


class CampaignRow(Base):
    """A campaign: ``status`` draft | pilot | live | ended; ``definition`` = the current version's JSON;
    ``budget_spent`` grows by a conditional UPDATE (never past ``budget_cap``)."""

    __tablename__ = "campaigns"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    brand_id: Mapped[str] = mapped_column(ForeignKey("brands.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="draft")
    version: Mapped[int] = mapped_column(Integer, default=1)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    budget_cap: Mapped[float | None] = mapped_column(Float, nullable=True)
    budget_spent: Mapped[float] = mapped_column(Float, default=0.0)
    starts_at: Mapped[datetime] = mapped_column(DateTime)
    ends_at: Mapped[datetime] = mapped_column(DateTime)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    pilot_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    launched_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class CampaignVersionRow(Base):
    """Every saved definition (the audit trail of rule changes)."""

    __tablename__ = "campaign_versions"
    __table_args__ = (UniqueConstraint("campaign_id", "version", name="uq_campaign_versions_version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"))
    version: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class CampaignParticipantRow(Base):
    """A person who started sharing (发起): a node of the invite tree. ``person_key`` = ``c:<customer id>`` when
    OneID knows the person, else ``i:<type>:<value>``; ``sharer_id`` = the participant whose link brought them
    (None for a seed, depth 0); ``new_customer`` = not a customer of the brand before joining; ``token`` = the
    share token in their links and posters."""

    __tablename__ = "campaign_participants"
    __table_args__ = (
        UniqueConstraint("campaign_id", "person_key", name="uq_campaign_participants_person"),
        UniqueConstraint("token", name="uq_campaign_participants_token"),
        Index("ix_campaign_participants_sharer", "campaign_id", "sharer_id"),
        Index("ix_campaign_participants_guide", "campaign_id", "guide_id"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    brand_id: Mapped[str] = mapped_column(String(64))
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"))
    person_key: Mapped[str] = mapped_column(String(300))
    customer_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    id_type: Mapped[str] = mapped_column(String(40))
    id_value: Mapped[str] = mapped_column(String(256))
    token: Mapped[str] = mapped_column(String(40))
    variant: Mapped[str | None] = mapped_column(String(32), nullable=True)
    channel: Mapped[str] = mapped_column(String(64), default="")
    platform: Mapped[str] = mapped_column(String(32), default="")
    sharer_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    depth: Mapped[int] = mapped_column(Integer, default=0)
    guide_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    region: Mapped[str] = mapped_column(String(40), default="")
    new_customer: Mapped[bool] = mapped_column(Boolean, default=False)
    helps_counted: Mapped[int] = mapped_column(Integer, default=0)
    helps_pending: Mapped[int] = mapped_column(Integer, default=0)
    tiers_reached: Mapped[int] = mapped_column(Integer, default=0)
    pool_choices: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # tier index → chosen reward id
    first_seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    observed: Mapped[bool] = mapped_column(Boolean, default=False)


class CampaignHelpRow(Base):
    """One help attempt: ``state`` pending_carrier | counted | rejected | revoked (``reason`` a code of
    ``siyu.domain.campaign.rules.REASONS``). Traceable to campaign, variant (the sharer's), channel, platform,
    sharer, depth (the helper's would-be depth = sharer depth + 1) and guide."""

    __tablename__ = "campaign_helps"
    __table_args__ = (
        Index("ix_campaign_helps_sharer", "campaign_id", "sharer_id", "state"),
        Index("ix_campaign_helps_device", "campaign_id", "device_id", "created_at"),
        Index("ix_campaign_helps_ip", "campaign_id", "ip", "created_at"),
        Index("ix_campaign_helps_person", "brand_id", "helper_key", "created_at"),
        Index("ix_campaign_helps_pending", "campaign_id", "state", "helper_id_value"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    brand_id: Mapped[str] = mapped_column(String(64))
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"))
    sharer_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    helper_key: Mapped[str] = mapped_column(String(300))
    helper_customer_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    helper_id_type: Mapped[str] = mapped_column(String(40))
    helper_id_value: Mapped[str] = mapped_column(String(256))
    variant: Mapped[str | None] = mapped_column(String(32), nullable=True)
    channel: Mapped[str] = mapped_column(String(64), default="")
    platform: Mapped[str] = mapped_column(String(32), default="")
    depth: Mapped[int] = mapped_column(Integer, default=1)
    guide_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    new_customer: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(32), default="")
    device_id: Mapped[str] = mapped_column(String(128), default="")
    ip: Mapped[str] = mapped_column(String(64), default="")
    region: Mapped[str] = mapped_column(String(40), default="")
    carrier_ref: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    counted_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    observed: Mapped[bool] = mapped_column(Boolean, default=False)


class CampaignHelpKeyRow(Base):
    """The keys of the person behind an accepted help (customer id and identity keys): the unique constraint is
    what makes one help per person per campaign hold under concurrent requests and across merged identities."""

    __tablename__ = "campaign_help_keys"
    __table_args__ = (UniqueConstraint("campaign_id", "key", name="uq_campaign_help_keys_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(300))
    help_id: Mapped[int] = mapped_column(Integer)


class CampaignTeamRow(Base):
    """A group-buy team: ``members`` counts the initiator too and grows by a conditional UPDATE (never past
    ``size``); ``status`` open | complete | expired."""

    __tablename__ = "campaign_teams"
    __table_args__ = (Index("ix_campaign_teams_campaign", "campaign_id", "status"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    brand_id: Mapped[str] = mapped_column(String(64))
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"))
    leader_id: Mapped[str] = mapped_column(String(32))
    variant: Mapped[str | None] = mapped_column(String(32), nullable=True)
    size: Mapped[int] = mapped_column(Integer)
    members: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16), default="open")
    deadline_at: Mapped[datetime] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class CampaignTeamMemberRow(Base):
    """A member of a team (``role`` initiator | joiner); a participant is in one team per campaign as a joiner."""

    __tablename__ = "campaign_team_members"
    __table_args__ = (
        UniqueConstraint("team_id", "participant_id", name="uq_campaign_team_members_member"),
        Index("ix_campaign_team_members_participant", "campaign_id", "participant_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    team_id: Mapped[str] = mapped_column(ForeignKey("campaign_teams.id"))
    campaign_id: Mapped[str] = mapped_column(String(64))
    participant_id: Mapped[str] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(16))
    joined_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class CampaignGiftRow(Base):
    """A gift (赠送): ``status`` sent | claimed | redeemed | expired; ``token`` is in the claim link."""

    __tablename__ = "campaign_gifts"
    __table_args__ = (
        UniqueConstraint("token", name="uq_campaign_gifts_token"),
        Index("ix_campaign_gifts_giver", "campaign_id", "giver_id"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    brand_id: Mapped[str] = mapped_column(String(64))
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"))
    giver_id: Mapped[str] = mapped_column(String(32))
    token: Mapped[str] = mapped_column(String(40))
    reward_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="sent")
    receiver_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    grant_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    bonus_grant_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    redeemed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class CampaignRewardRow(Base):
    """A reward the campaign issued (or failed to): ``key`` = campaign + participant + what (tier i / team /
    gift / bonus / helper) so a retry never issues twice; ``status`` granted | failed | clawed_back."""

    __tablename__ = "campaign_rewards"
    __table_args__ = (
        UniqueConstraint("key", name="uq_campaign_rewards_key"),
        Index("ix_campaign_rewards_participant", "campaign_id", "participant_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    brand_id: Mapped[str] = mapped_column(String(64))
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"))
    participant_id: Mapped[str] = mapped_column(String(32))
    customer_id: Mapped[str] = mapped_column(String(128))
    what: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(200))
    reward_id: Mapped[str] = mapped_column(String(64))
    grant_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    detail: Mapped[str] = mapped_column(Text, default="")
    variant: Mapped[str | None] = mapped_column(String(32), nullable=True)
    guide_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class CampaignVisitRow(Base):
    """Page views per campaign, day (Asia/Shanghai), variant, channel and page (访问参与率's numerator base):
    counters, one upsert per view."""

    __tablename__ = "campaign_visits"
    __table_args__ = (
        UniqueConstraint("campaign_id", "day", "variant", "channel", "page", name="uq_campaign_visits_bucket"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"))
    day: Mapped[str] = mapped_column(String(10))
    variant: Mapped[str] = mapped_column(String(32), default="")
    channel: Mapped[str] = mapped_column(String(64), default="")
    page: Mapped[str] = mapped_column(String(32), default="campaign")
    views: Mapped[int] = mapped_column(Integer, default=0)
