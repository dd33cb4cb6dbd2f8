"""Segment HTTP API messages: limits, per-type validation, clock-skew correction, identifiers (pure, no I/O).

A message is validated into an ``EventRow`` (the columns of the ``events`` table) and, when it reveals
identifiers that belong together, an ``Observation`` for OneID.  Invalid messages raise ``MessageRejected``
naming the field and the fix; the service layer turns that into a 400/413 or a per-event rejection in a batch.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import orjson

from siyu.domain.identity import IdentifierError, IdType, normalize

EVENT_TYPES: frozenset[str] = frozenset({"identify", "track", "page", "screen", "group", "alias"})

# Trait keys that carry identifiers (Segment camelCase and snake_case spellings) → IdType.
TRAIT_IDENTIFIERS: dict[str, str] = {
    "phone": IdType.PHONE,
    "mobile": IdType.PHONE,
    "email": IdType.EMAIL,
    "unionid": IdType.UNIONID,
    "unionId": IdType.UNIONID,
    "union_id": IdType.UNIONID,
    "openid": IdType.OPENID,
    "openId": IdType.OPENID,
    "external_userid": IdType.EXTERNAL_USERID,
    "externalUserId": IdType.EXTERNAL_USERID,
    "externalUserid": IdType.EXTERNAL_USERID,
    "member_id": IdType.MEMBER_ID,
    "memberId": IdType.MEMBER_ID,
    "customer_id": IdType.CUSTOMER_ID,
    "customerId": IdType.CUSTOMER_ID,
    "inquiry_id": IdType.INQUIRY_ID,
    "inquiryId": IdType.INQUIRY_ID,
    "device_id": IdType.DEVICE_ID,
    "deviceId": IdType.DEVICE_ID,
}

_EPOCH = datetime(1970, 1, 1)
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


@dataclass(frozen=True)
class Limits:
    """Segment's HTTP API limits (values come from Settings)."""

    max_event_bytes: int = 32 * 1024
    max_batch_bytes: int = 500 * 1024
    max_batch_events: int = 2500
    max_message_id_chars: int = 100

    @classmethod
    def from_settings(cls, settings: Any) -> Limits:
        """Read the limits from a ``siyu.config.Settings``."""
        return cls(
            settings.max_event_bytes,
            settings.max_batch_bytes,
            settings.max_batch_events,
            settings.max_message_id_chars,
        )


class MessageRejected(ValueError):
    """One message cannot be accepted. ``too_large`` marks limit violations (HTTP 413 for single events)."""

    def __init__(self, field: str, reason: str, too_large: bool = False) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason
        self.too_large = too_large


@dataclass(slots=True)
class Observation:
    """Identifiers seen together in one event (plus profile traits), for ``identity_observations``."""

    identifiers: list[dict[str, str]]
    traits: str | None


@dataclass(slots=True)
class EventRow:
    """One validated message, shaped like a row of ``events``; times are epoch microseconds (UTC)."""

    message_id: str
    type: str
    event: str | None
    name: str | None
    user_id: str | None
    anonymous_id: str | None
    group_id: str | None
    previous_id: str | None
    properties: str | None
    traits: str | None
    context: str | None
    timestamp: int
    original_timestamp: int | None
    sent_at: int | None
    received_at: int
    observation: Observation | None


def to_micros(value: datetime) -> int:
    """Epoch microseconds of a datetime (naive values are taken as UTC)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def parse_time(value: object, field: str) -> int | None:
    """Parse an ISO-8601 timestamp (``Z`` or offset; naive = UTC) into epoch microseconds; None if absent."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise MessageRejected(field, f"{field} must be an ISO-8601 string such as 2024-05-01T08:00:00.000Z")
    micros = _iso_micros(value)
    if micros is None:
        raise MessageRejected(
            field, f"{field} {value[:40]!r} is not an ISO-8601 time; send e.g. 2024-05-01T08:00:00.000Z"
        )
    return micros


@lru_cache(maxsize=4096)
def _iso_micros(value: str) -> int | None:
    """Epoch microseconds of an ISO-8601 string, or None when it is not one (cached: a batch's events usually
    share a handful of timestamps)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return (parsed - _EPOCH) // _MICRO
    return (parsed - _EPOCH_UTC) // _MICRO


def corrected_timestamp(original: int | None, sent_at: int | None, received_at: int) -> int:
    """Segment's clock-skew correction: ``receivedAt − (sentAt − originalTimestamp)`` when sentAt is known."""
    if original is None:
        return received_at
    if sent_at is None:
        return original
    return received_at - (sent_at - original)


def _opt_str(msg: dict[str, Any], key: str, field: str) -> str | None:
    value = msg.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise MessageRejected(field, f"{field} must be a string (got {type(value).__name__})")


def _json_obj(msg: dict[str, Any], key: str) -> str | None:
    value = msg.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise MessageRejected(key, f"{key} must be a JSON object, e.g. {{}}")
    return orjson.dumps(value).decode() if value else None


def _ident(id_type: str, raw: str) -> dict[str, str] | None:
    try:
        ident = normalize(id_type, raw)
    except IdentifierError:
        return None
    return {"type": ident.type, "value": ident.value}


def _observation(
    type_: str,
    user_id: str | None,
    anonymous_id: str | None,
    previous_id: str | None,
    traits: dict[str, Any] | None,
    traits_json: str | None,
) -> Observation | None:
    """Which identifiers this message links (see the OneID contract)."""
    if type_ != "identify" and type_ != "alias" and (user_id is None or anonymous_id is None):
        return None  # one identifier alone links nothing
    ids: list[dict[str, str]] = []
    if type_ == "alias":
        # previousId is the anonymousId when the message says so, otherwise an earlier userId.
        prev_type: str = IdType.ANONYMOUS_ID if previous_id == anonymous_id else IdType.USER_ID
        for id_type, raw in ((prev_type, previous_id), (IdType.USER_ID, user_id)):
            if raw is not None and (item := _ident(id_type, raw)) is not None:
                ids.append(item)
        return Observation(ids, None) if len(ids) == 2 else None
    for id_type, raw in ((IdType.USER_ID, user_id), (IdType.ANONYMOUS_ID, anonymous_id)):
        if raw is not None and (item := _ident(id_type, raw)) is not None:
            ids.append(item)
    if type_ == "identify":
        if traits:
            for key, trait_type in TRAIT_IDENTIFIERS.items():
                raw = traits.get(key)
                if raw is not None and not isinstance(raw, dict | list | bool):
                    item = _ident(trait_type, str(raw))
                    if item is not None and item not in ids:
                        ids.append(item)
        return Observation(ids, traits_json) if ids else None
    return Observation(ids, None) if len(ids) >= 2 else None


def validate_message(
    msg: object,
    type_: str | None,
    limits: Limits,
    received_at: int,
    batch_sent_at: int | None = None,
    batch_context: dict[str, Any] | None = None,
    size: int | None = None,
) -> EventRow:
    """Validate one Segment message and shape it as an ``EventRow``.

    ``type_`` is the endpoint's type (None inside a batch, where the message's ``type`` decides).  ``size`` is
    the message's encoded size, or an upper bound of it (a request body's length), when already known.
    """
    if not isinstance(msg, dict):
        raise MessageRejected("message", "each message must be a JSON object")
    if size is None:
        size = len(orjson.dumps(msg))
    if size > limits.max_event_bytes:
        raise MessageRejected(
            "message",
            f"message is {size} bytes; the limit is {limits.max_event_bytes // 1024} KB per event — "
            "send fewer properties/traits",
            too_large=True,
        )
    if type_ is None:
        type_ = msg.get("type")
        if type_ not in EVENT_TYPES:
            raise MessageRejected(
                "type", f"type must be one of {', '.join(sorted(EVENT_TYPES))} (got {str(type_)[:20]!r})"
            )
    message_id = _opt_str(msg, "messageId", "messageId")
    if message_id is None:
        message_id = str(uuid.uuid4())
    elif len(message_id) >= limits.max_message_id_chars:
        raise MessageRejected(
            "messageId",
            f"messageId has {len(message_id)} characters; it must be shorter than "
            f"{limits.max_message_id_chars} characters (a UUID is fine)",
        )
    user_id = _opt_str(msg, "userId", "userId")
    anonymous_id = _opt_str(msg, "anonymousId", "anonymousId")
    event = name = group_id = previous_id = None
    if type_ == "alias":
        previous_id = _opt_str(msg, "previousId", "previousId")
        if previous_id is None:
            raise MessageRejected("previousId", "alias needs previousId (the old id being merged into userId)")
        if user_id is None:
            raise MessageRejected("userId", "alias needs userId (the new id that previousId is merged into)")
    elif user_id is None and anonymous_id is None:
        raise MessageRejected("userId", f"{type_} needs userId or anonymousId; set at least one of them")
    if type_ == "track":
        event = _opt_str(msg, "event", "event")
        if event is None:
            raise MessageRejected("event", "track needs event (the action's name, e.g. 'Order Completed')")
    elif type_ in ("page", "screen"):
        name = _opt_str(msg, "name", "name")
    elif type_ == "group":
        group_id = _opt_str(msg, "groupId", "groupId")
        if group_id is None:
            raise MessageRejected("groupId", "group needs groupId (the account/company the user belongs to)")
    properties = _json_obj(msg, "properties")
    raw_traits = msg.get("traits")
    traits = _json_obj(msg, "traits")
    if batch_context:
        ctx_value = msg.get("context")
        merged = dict(batch_context)
        if isinstance(ctx_value, dict):
            merged.update(ctx_value)
        context: str | None = orjson.dumps(merged).decode()
    else:
        context = _json_obj(msg, "context")
    original = parse_time(msg.get("originalTimestamp") or msg.get("timestamp"), "timestamp")
    sent_at = parse_time(msg.get("sentAt"), "sentAt")
    if sent_at is None:
        sent_at = batch_sent_at
    timestamp = corrected_timestamp(original, sent_at, received_at)
    observation = _observation(
        type_, user_id, anonymous_id, previous_id, raw_traits if isinstance(raw_traits, dict) else None, traits
    )
    return EventRow(
        message_id,
        type_,
        event,
        name,
        user_id,
        anonymous_id,
        group_id,
        previous_id,
        properties,
        traits,
        context,
        timestamp,
        original,
        sent_at,
        received_at,
        observation,
    )
