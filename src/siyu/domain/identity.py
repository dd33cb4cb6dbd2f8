"""Identifier types, their normalisation, and the per-type merge policy used by OneID."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

import phonenumbers

from siyu.domain.models import Identity


class IdType(StrEnum):
    """Identifier types OneID knows. Brands may add their own (any lowercase name)."""

    PHONE = "phone"
    EMAIL = "email"
    UNIONID = "unionid"  # WeChat unionid (one per person across a brand's apps)
    OPENID = "openid"  # value is "<appid>:<openid>": openids are per app
    EXTERNAL_USERID = "external_userid"  # WeCom external contact id
    MEMBER_ID = "member_id"
    CUSTOMER_ID = "customer_id"  # the brand's own customer number (CRM / ERP)
    INQUIRY_ID = "inquiry_id"
    USER_ID = "user_id"  # Segment userId
    ANONYMOUS_ID = "anonymous_id"  # Segment anonymousId
    DEVICE_ID = "device_id"


class IdentifierError(ValueError):
    """An identifier value that cannot be normalised; the message says why and how to fix it."""


_CN_MOBILE = re.compile(r"1[3-9]\d{9}")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ID_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def normalize_phone(raw: str, default_region: str = "CN") -> str:
    """Normalise a phone number to E.164 (+86 assumed when no country code is given)."""
    text = str(raw).strip()
    if text.endswith(".0"):  # spreadsheets turn phone numbers into floats
        text = text[:-2]
    digits = re.sub(r"[\s\-().]", "", text)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    try:
        parsed = phonenumbers.parse(digits, default_region)
    except phonenumbers.NumberParseException as exc:
        raise IdentifierError(f"phone {raw!r} is not a phone number ({exc}); give digits, e.g. 13800138000") from exc
    # Mainland mobiles: any 1[3-9] + 9 digits (prefix allocations move faster than phone metadata);
    # everything else must be a valid number for its country.
    cn_mobile = parsed.country_code == 86 and _CN_MOBILE.fullmatch(str(parsed.national_number)) is not None
    if not (cn_mobile or phonenumbers.is_valid_number(parsed)):
        raise IdentifierError(
            f"phone {raw!r} is not a valid number (wrong length or prefix); a mainland mobile has 11 digits "
            "starting with 1, other countries need their +code"
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalize(id_type: str, raw: object, default_region: str = "CN") -> Identity:
    """Return the canonical Identity for a raw value of a given type, or raise IdentifierError."""
    if not _ID_TYPE.match(id_type):
        raise IdentifierError(f"identifier type {id_type!r} must be lowercase letters, digits and _")
    if raw is None:
        raise IdentifierError(f"{id_type} is empty")
    value = str(raw).strip()
    if not value or value.lower() in {"nan", "none", "null"}:
        raise IdentifierError(f"{id_type} is empty")
    if len(value) > 256:
        raise IdentifierError(f"{id_type} is longer than 256 characters")
    if id_type == IdType.PHONE:
        value = normalize_phone(value, default_region)
    elif id_type == IdType.EMAIL:
        value = value.lower()
        if not _EMAIL.match(value):
            raise IdentifierError(f"email {raw!r} is not an e-mail address (name@domain)")
    elif id_type in (IdType.MEMBER_ID, IdType.CUSTOMER_ID) and value.endswith(".0") and value[:-2].isdigit():
        value = value[:-2]
    return Identity(id_type, value)


@dataclass(frozen=True)
class TypePolicy:
    """How OneID treats one identifier type.

    trust: higher merges first and wins conflicts; 0 means "never merge on this type" (it is recorded only).
    max_per_person: a person may hold at most this many distinct values of the type (None = unlimited).
    max_people_per_value: a value seen with more people than this is shared (e.g. a family tablet) and is
    not used to merge.
    """

    trust: int
    max_per_person: int | None = None
    max_people_per_value: int | None = None


DEFAULT_POLICIES: dict[str, TypePolicy] = {
    IdType.UNIONID: TypePolicy(trust=100, max_per_person=1),
    IdType.EXTERNAL_USERID: TypePolicy(trust=95, max_per_person=1),
    IdType.OPENID: TypePolicy(trust=90, max_per_person=None),
    IdType.MEMBER_ID: TypePolicy(trust=85, max_per_person=1),
    IdType.CUSTOMER_ID: TypePolicy(trust=85, max_per_person=3),
    IdType.USER_ID: TypePolicy(trust=80, max_per_person=3),
    IdType.PHONE: TypePolicy(trust=70, max_per_person=2),
    IdType.EMAIL: TypePolicy(trust=60, max_per_person=3),
    IdType.INQUIRY_ID: TypePolicy(trust=50, max_per_person=None),
    IdType.ANONYMOUS_ID: TypePolicy(trust=30, max_per_person=None, max_people_per_value=3),
    IdType.DEVICE_ID: TypePolicy(trust=0),
}


@dataclass(frozen=True)
class OneIdPolicy:
    """A brand's OneID configuration: the policy of each identifier type."""

    types: dict[str, TypePolicy] = field(default_factory=lambda: dict(DEFAULT_POLICIES))
    unknown_type: TypePolicy = TypePolicy(trust=40, max_per_person=None)

    def of(self, id_type: str) -> TypePolicy:
        """The policy of a type (``unknown_type`` for types the brand did not configure)."""
        return self.types.get(id_type, self.unknown_type)

    @classmethod
    def from_settings(cls, data: object) -> OneIdPolicy:
        """Build a policy from a brand's ``settings["oneid"]``: ``{"types": {"phone": {"trust": 70,
        "max_per_person": 2}}, "unknown_type": {...}}``; types not named keep DEFAULT_POLICIES."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise IdentifierError('settings.oneid must be an object like {"types": {"phone": {"trust": 70}}}')
        types = dict(DEFAULT_POLICIES)
        raw_types = data.get("types", {})
        if not isinstance(raw_types, dict):
            raise IdentifierError("settings.oneid.types must map identifier types to policies")
        for name, spec in raw_types.items():
            if not _ID_TYPE.match(str(name)):
                raise IdentifierError(f"settings.oneid.types: {name!r} must be lowercase letters, digits and _")
            types[str(name)] = _type_policy(spec, f"settings.oneid.types.{name}", types.get(str(name)))
        unknown = cls().unknown_type
        if "unknown_type" in data:
            unknown = _type_policy(data["unknown_type"], "settings.oneid.unknown_type", unknown)
        return cls(types=types, unknown_type=unknown)


def _type_policy(spec: object, where: str, base: TypePolicy | None) -> TypePolicy:
    if not isinstance(spec, dict):
        raise IdentifierError(f"{where} must be an object with trust / max_per_person / max_people_per_value")
    unknown = set(spec) - {"trust", "max_per_person", "max_people_per_value"}
    if unknown:
        raise IdentifierError(
            f"{where}: unknown keys {sorted(unknown)}; use trust, max_per_person, max_people_per_value"
        )
    values: dict[str, int | None] = {
        "trust": base.trust if base else 40,
        "max_per_person": base.max_per_person if base else None,
        "max_people_per_value": base.max_people_per_value if base else None,
    }
    for key, value in spec.items():
        if value is None and key != "trust":
            values[key] = None
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < (0 if key == "trust" else 1):
            low = 0 if key == "trust" else 1
            raise IdentifierError(f"{where}.{key} must be an integer >= {low} (got {value!r})")
        values[key] = value
    trust = values["trust"]
    assert trust is not None
    return TypePolicy(
        trust=trust, max_per_person=values["max_per_person"], max_people_per_value=values["max_people_per_value"]
    )
