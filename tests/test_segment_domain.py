"""Pure Segment message rules: validation, limits, skew correction, identifiers (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from siyu.domain.segment import (
    Limits,
    MessageRejected,
    corrected_timestamp,
    parse_time,
    to_micros,
    validate_message,
)

NOW = to_micros(datetime(2025, 1, 1, 12, 0, tzinfo=UTC))
LIMITS = Limits()


def test_parse_time_accepts_z_offsets_and_naive_as_utc() -> None:
    expected = to_micros(datetime(2024, 5, 1, 8, 0, tzinfo=UTC))
    assert parse_time("2024-05-01T08:00:00.000Z", "timestamp") == expected
    assert parse_time("2024-05-01T16:00:00+08:00", "timestamp") == expected
    assert parse_time("2024-05-01T08:00:00", "timestamp") == expected
    assert parse_time(None, "timestamp") is None
    with pytest.raises(MessageRejected) as err:
        parse_time(12345, "sentAt")
    assert err.value.field == "sentAt"


def test_skew_correction_follows_segment() -> None:
    assert corrected_timestamp(1_000, 4_000, 10_000) == 7_000  # received − (sent − original)
    assert corrected_timestamp(1_000, None, 10_000) == 1_000
    assert corrected_timestamp(None, 4_000, 10_000) == 10_000


def test_numeric_ids_become_strings_and_message_id_is_generated() -> None:
    row = validate_message({"userId": 42, "event": "E"}, "track", LIMITS, NOW)
    assert row.user_id == "42" and row.event == "E" and len(row.message_id) == 36
    assert row.timestamp == NOW and row.observation is None


def test_identify_collects_trait_identifiers_and_skips_bad_ones() -> None:
    row = validate_message(
        {"userId": "u", "traits": {"phone": "13800138000", "email": "not-mail", "memberId": 77.0}},
        "identify",
        LIMITS,
        NOW,
    )
    assert row.observation is not None
    assert row.observation.identifiers == [
        {"type": "user_id", "value": "u"},
        {"type": "phone", "value": "+8613800138000"},
        {"type": "member_id", "value": "77"},
    ]


def test_alias_previous_id_type_follows_anonymous_id() -> None:
    row = validate_message({"previousId": "a", "anonymousId": "a", "userId": "u"}, "alias", LIMITS, NOW)
    assert row.observation is not None
    assert [i["type"] for i in row.observation.identifiers] == ["anonymous_id", "user_id"]


def test_limits_from_settings_drive_validation() -> None:
    small = Limits(max_event_bytes=50, max_message_id_chars=5)
    with pytest.raises(MessageRejected) as err:
        validate_message({"userId": "u", "event": "E", "properties": {"x": "y" * 60}}, "track", small, NOW)
    assert err.value.too_large and err.value.field == "message"
    with pytest.raises(MessageRejected) as err:
        validate_message({"userId": "u", "event": "E", "messageId": "abcde"}, "track", small, NOW)
    assert err.value.field == "messageId" and not err.value.too_large


def test_batch_message_needs_a_known_type() -> None:
    with pytest.raises(MessageRejected) as err:
        validate_message({"userId": "u"}, None, LIMITS, NOW)
    assert err.value.field == "type" and "track" in err.value.reason
