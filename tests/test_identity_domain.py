"""Identifier normalisation: one canonical value per identifier, clear errors for bad values."""

from __future__ import annotations

import pytest

from siyu.domain.identity import IdentifierError, IdType, normalize


@pytest.mark.parametrize(
    "raw",
    ["13800138000", "138 0013 8000", "138-0013-8000", "+86 138 0013 8000", "008613800138000", "13800138000.0"],
)
def test_mainland_mobiles_in_any_spelling_are_one_value(raw: str) -> None:
    assert normalize(IdType.PHONE, raw).value == "+8613800138000"


def test_foreign_and_landline_numbers_keep_their_country() -> None:
    assert normalize("phone", "+1 202 555 0123").value == "+12025550123"
    assert normalize("phone", "010-12345678").value == "+861012345678"


@pytest.mark.parametrize("raw", ["12345", "1380013800", "138001380001", "not a phone", ""])
def test_bad_phones_are_refused_with_the_fix(raw: str) -> None:
    with pytest.raises(IdentifierError) as err:
        normalize("phone", raw)
    assert "phone" in str(err.value)


def test_email_is_lowercased_and_checked() -> None:
    assert normalize("email", " Ann@Example.COM ").value == "ann@example.com"
    with pytest.raises(IdentifierError, match="e-mail"):
        normalize("email", "ann.example.com")


def test_spreadsheet_floats_lose_their_decimal_in_member_ids() -> None:
    assert normalize("member_id", "10023.0").value == "10023"
    assert normalize("unionid", "oABC.0").value == "oABC.0"  # only numeric member/customer ids are repaired


def test_type_names_are_checked() -> None:
    with pytest.raises(IdentifierError, match="lowercase"):
        normalize("Phone Number", "13800138000")
    assert normalize("wecom_corp_id", "ww1").type == "wecom_corp_id"  # brands may add their own types


def test_new_mainland_mobile_prefixes_are_accepted() -> None:
    """Carriers open prefixes before phone metadata knows them: any 1[3-9] + 9 digits is a mainland mobile."""
    assert normalize("phone", "16049008934").value == "+8616049008934"
