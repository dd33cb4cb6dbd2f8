"""Rewards (pure, no I/O): the four kinds and their settings, the shipping address of a physical gift, coupon
codes and validity.

Kinds: ``coupon`` (face value, minimum spend, validity in days or until a date, a code list or generated codes),
``points`` (points credited to the ledger, expiring after ``valid_days``), ``physical`` (a gift shipped to an
address the customer gives), ``virtual`` (a code from a list, or a link). Every reward has a unit cost (what one
grant costs the brand, for campaign ROI), an optional stock and an optional budget (cap on the total cost).
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from siyu.domain.engagement.common import first_error
from siyu.errors import SiyuError

KINDS = ("coupon", "points", "physical", "virtual")
RewardKind = Literal["coupon", "points", "physical", "virtual"]
MAX_CODES = 100_000
MAX_STOCK = 10_000_000
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
_PHONE = re.compile(r"^1[3-9]\d{9}$")
_CODE = re.compile(r"^[A-Za-z0-9_\-]{4,64}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CouponConfig(_Model):
    """A coupon: ``face_value`` off an order of at least ``min_spend``; valid ``valid_days`` from the grant or
    until ``valid_until``; codes from ``codes`` (the stock is then at most their number) or generated with
    ``code_prefix``."""

    face_value: float = Field(gt=0, le=1_000_000)
    min_spend: float = Field(default=0, ge=0, le=10_000_000)
    valid_days: int | None = Field(default=30, ge=1, le=3650)
    valid_until: datetime | None = None
    codes: list[str] = Field(default_factory=list, max_length=MAX_CODES)
    code_prefix: str = Field(default="C", max_length=8, pattern=r"^[A-Z0-9]*$")

    @model_validator(mode="after")
    def _check(self) -> CouponConfig:
        if self.min_spend and self.min_spend < self.face_value:
            raise ValueError("min_spend: must be 0 (no minimum) or at least face_value")
        return self


class PointsConfig(_Model):
    """Points credited on grant; they expire ``valid_days`` after the grant (FIFO by lot)."""

    points: int = Field(gt=0, le=10_000_000)
    valid_days: int = Field(default=365, ge=1, le=3650)


class PhysicalConfig(_Model):
    """A gift shipped to the address the customer gives after winning."""

    sku: str = Field(default="", max_length=64)
    description: str = Field(default="", max_length=500)


class VirtualConfig(_Model):
    """Virtual goods: a code from ``codes`` or one ``link`` for everyone."""

    codes: list[str] = Field(default_factory=list, max_length=MAX_CODES)
    link: str = Field(default="", max_length=1000, pattern=r"^(https?://\S+)?$")
    valid_days: int | None = Field(default=None, ge=1, le=3650)

    @model_validator(mode="after")
    def _check(self) -> VirtualConfig:
        if not self.codes and not self.link:
            raise ValueError("give codes (a list) or a link (https://...) for virtual goods")
        return self


CONFIGS: dict[str, type[_Model]] = {
    "coupon": CouponConfig,
    "points": PointsConfig,
    "physical": PhysicalConfig,
    "virtual": VirtualConfig,
}


class RewardSpec(_Model):
    """What an operator sends to create a reward."""

    name: str = Field(min_length=1, max_length=200)
    kind: RewardKind
    config: dict[str, Any] = Field(default_factory=dict)
    unit_cost: float = Field(default=0, ge=0, le=1_000_000)
    stock: int | None = Field(default=None, ge=0, le=MAX_STOCK)
    budget: float | None = Field(default=None, ge=0)
    valid_until: datetime | None = None
    return_stock_on_clawback: bool = True


def _first_error(exc: ValidationError, prefix: str) -> SiyuError:
    if prefix:
        return first_error(exc, prefix)
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ())) or "reward"
    return SiyuError(f"{loc}: {str(err['msg']).removeprefix('Value error, ')}", loc)


def parse_spec(data: dict[str, Any]) -> tuple[RewardSpec, _Model]:
    """Validate a reward definition: the spec and its kind's config. Errors name the field (``config.x``)."""
    try:
        spec = RewardSpec.model_validate(data)
    except ValidationError as exc:
        raise _first_error(exc, "") from None
    config = parse_config(spec.kind, spec.config)
    codes = getattr(config, "codes", [])
    check_codes(codes)
    if codes and spec.stock is not None and spec.stock > len(codes):
        raise SiyuError(
            f"stock: {spec.stock} is more than the {len(codes)} codes given; lower the stock or add codes", "stock"
        )
    return spec, config


def parse_config(kind: str, config: dict[str, Any]) -> _Model:
    """Validate the settings of one kind of reward."""
    if kind not in CONFIGS:
        raise SiyuError(f"kind: {kind!r} is not a reward kind; use one of {', '.join(KINDS)}", "kind")
    try:
        return CONFIGS[kind].model_validate(config)
    except ValidationError as exc:
        raise _first_error(exc, "config") from None


def check_codes(codes: list[str]) -> None:
    """Codes are 4–64 letters, digits, - or _, each once."""
    seen: set[str] = set()
    for i, code in enumerate(codes):
        if not _CODE.match(code):
            raise SiyuError(
                f"config.codes[{i}]: {code!r} is not a code; use 4-64 letters, digits, - or _", "config.codes"
            )
        if code in seen:
            raise SiyuError(f"config.codes[{i}]: {code!r} appears twice; each code once", "config.codes")
        seen.add(code)


def generate_code(prefix: str = "C", length: int = 10) -> str:
    """A random code (about 50 bits) without look-alike characters."""
    return prefix + "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


def expiry(kind: str, config: dict[str, Any], granted_at: datetime) -> datetime | None:
    """When a grant made at ``granted_at`` stops being usable (None = never): the earlier of valid_days after
    the grant and valid_until."""
    days = config.get("valid_days")
    ends: list[datetime] = []
    if kind in ("coupon", "points", "virtual") and days:
        ends.append(granted_at + timedelta(days=int(days)))
    until = config.get("valid_until")
    if kind == "coupon" and until:
        ends.append(until if isinstance(until, datetime) else datetime.fromisoformat(str(until)))
    return min(ends) if ends else None


def check_redeem(config: dict[str, Any], order_amount: float) -> None:
    """A coupon applies to an order of at least its minimum spend."""
    min_spend = float(config.get("min_spend") or 0)
    if order_amount < 0:
        raise SiyuError("order_amount must be 0 or more", "order_amount")
    if order_amount < min_spend:
        raise SiyuError(
            f"order_amount: this coupon needs an order of at least {min_spend:g} (got {order_amount:g})",
            "order_amount",
        )


class Address(_Model):
    """A shipping address in mainland China: recipient, mobile, province / city / district and the street."""

    name: str = Field(min_length=1, max_length=50)
    phone: str = Field(min_length=11, max_length=11)
    province: str = Field(min_length=2, max_length=30)
    city: str = Field(min_length=2, max_length=30)
    district: str = Field(min_length=2, max_length=30)
    detail: str = Field(min_length=4, max_length=200)


def parse_address(data: dict[str, Any]) -> Address:
    """Validate an address; the error names the field (``address.phone``) and the fix."""
    cleaned = {k: v.strip() if isinstance(v, str) else v for k, v in data.items()}
    try:
        addr = Address.model_validate(cleaned)
    except ValidationError as exc:
        raise _first_error(exc, "address") from None
    if not _PHONE.match(addr.phone):
        raise SiyuError(
            f"address.phone: {addr.phone!r} is not a mainland mobile number; write 11 digits starting 13-19",
            "address.phone",
        )
    return addr
