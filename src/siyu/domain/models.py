"""Core domain records (pure data, no I/O). Names follow the glossary in shared/reference/domain.md."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any


class Role(StrEnum):
    """Console / API roles."""

    ADMIN = "admin"
    OPERATOR = "operator"
    GUIDE = "guide"


class ChannelKind(StrEnum):
    """Public-domain sources a brand pays for."""

    AD_PLATFORM = "ad_platform"
    MARKETPLACE = "marketplace"
    PARCEL_CARD = "parcel_card"
    STORE = "store"
    AI_CALL_SMS = "ai_call_sms"
    REFERRAL = "referral"
    SEARCH = "search"
    SHORT_VIDEO = "short_video"
    OTHER = "other"


class TouchpointKind(StrEnum):
    """Owned (private-domain) channels."""

    WECOM_CONTACT = "wecom_contact"
    CUSTOMER_GROUP = "customer_group"
    OFFICIAL_ACCOUNT = "official_account"
    MINI_PROGRAM = "mini_program"
    SMS = "sms"
    APP = "app"


class RelationState(StrEnum):
    ACTIVE = "active"
    LOST = "lost"


class LostBy(StrEnum):
    CUSTOMER = "customer"  # 删粉: the customer deleted the guide (del_follow_user)
    GUIDE = "guide"  # the guide deleted the customer (del_external_contact)


class TagSource(StrEnum):
    MANUAL = "manual"
    RULE = "rule"


@dataclass(frozen=True)
class Brand:
    """A workspace: one brand's customers, staff and configuration."""

    id: str
    name: str


@dataclass(frozen=True)
class Identity:
    """One identifier of a person: a type (see ``identity.IdType``) and a normalised value."""

    type: str
    value: str


@dataclass
class Customer:
    """One person, as resolved by OneID."""

    id: str
    brand_id: str
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    traits: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Store:
    id: str
    brand_id: str
    name: str
    city: str | None = None


@dataclass(frozen=True)
class Guide:
    """导购: a staff member (a WeCom member) who owns customer relations."""

    id: str
    brand_id: str
    name: str
    store_id: str | None = None
    wecom_userid: str | None = None
    active: bool = True


@dataclass(frozen=True)
class Channel:
    """A public source of customers, with daily spend recorded in ``ChannelSpend``."""

    id: str
    brand_id: str
    name: str
    kind: ChannelKind


@dataclass(frozen=True)
class ChannelSpend:
    brand_id: str
    channel_id: str
    day: date
    spend: Decimal
    exposures: int = 0


@dataclass(frozen=True)
class Touchpoint:
    """An owned channel: a guide's WeCom contact list, a customer group, an official account, ..."""

    id: str
    brand_id: str
    name: str
    kind: TouchpointKind
    guide_id: str | None = None


@dataclass(frozen=True)
class Relation:
    """Customer ↔ guide WeCom relation (keyed by the customer's WeCom external_userid)."""

    brand_id: str
    external_userid: str
    guide_id: str
    added_at: datetime
    add_way: str | None = None
    state: RelationState = RelationState.ACTIVE
    lost_at: datetime | None = None
    lost_by: LostBy | None = None
    channel_id: str | None = None


@dataclass(frozen=True)
class OrderLine:
    line_no: int
    sku: str
    quantity: Decimal
    unit_price: Decimal
    name: str | None = None

    @property
    def amount(self) -> Decimal:
        return self.quantity * self.unit_price


@dataclass(frozen=True)
class Order:
    """An order, attributed to a person through one of their identifiers (``customer_ref``)."""

    brand_id: str
    order_id: str
    customer_ref: Identity
    ordered_at: datetime
    amount: Decimal
    lines: tuple[OrderLine, ...] = ()
    channel_id: str | None = None
    store_id: str | None = None
    guide_id: str | None = None
    status: str = "paid"


@dataclass(frozen=True)
class Event:
    """A Segment-shaped event (identify, track, page, screen, group, alias)."""

    brand_id: str
    message_id: str
    type: str
    timestamp: datetime
    received_at: datetime
    user_id: str | None = None
    anonymous_id: str | None = None
    event: str | None = None
    name: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    traits: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    group_id: str | None = None
    previous_id: str | None = None
    sent_at: datetime | None = None
    original_timestamp: datetime | None = None


@dataclass(frozen=True)
class Tag:
    id: str
    brand_id: str
    name: str
    source: TagSource = TagSource.MANUAL
    rule: str | None = None
