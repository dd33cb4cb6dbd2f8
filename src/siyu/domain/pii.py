"""Masking of personal data for display (pure): phones 138****5678, emails z***@qq.com, names 张*, street addresses,
WeCom / WeChat ids wmAB****wxYZ.  The console and the API answers it uses show masked values by default; a reveal
(audited) shows the clear ones.  Exports hash instead (``siyu.services.exports.hash_pii``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

STAR = "*"


def mask_phone(value: str) -> str:
    """``+8613812345678`` → ``138****5678`` (mainland numbers without +86); others keep their country code."""
    v = value.strip()
    if v.startswith("+86"):
        v = v[3:]
    digits = sum(ch.isdigit() for ch in v)
    if digits < 7:
        return STAR * len(v)
    return v[:3] + STAR * 4 + v[-4:]


def mask_email(value: str) -> str:
    """``zhang@qq.com`` → ``z***@qq.com`` (the domain stays: it says which mailbox, not whose)."""
    local, at, domain = value.strip().rpartition("@")
    if not at:
        return mask_token(value)
    return (local[:1] or STAR) + STAR * 3 + "@" + domain


def mask_name(value: str) -> str:
    """``张三`` → ``张*``, ``欧阳娜娜`` → ``欧***``, ``John Smith`` → ``J***``: the first character and at most three
    stars (the length of a long name is not shown)."""
    v = value.strip()
    if len(v) <= 1:
        return STAR if v else v
    return v[0] + STAR * min(len(v) - 1, 3)


def mask_street(value: str) -> str:
    """A street line: its first two characters (e.g. the road's first character) and ``****``."""
    v = value.strip()
    return (v[:2] + STAR * 4) if v else v


def mask_token(value: str) -> str:
    """An opaque id (external_userid, unionid, openid): first and last four characters, ``****`` between."""
    v = value.strip()
    if len(v) <= 8:
        return STAR * 4
    return v[:4] + STAR * 4 + v[-4:]


def mask_contact(value: str) -> str:
    """A message recipient: an email address masked as an email, anything else as a phone number."""
    return mask_email(value) if "@" in value else mask_phone(value)


def mask_address(value: Mapping[str, Any]) -> dict[str, Any]:
    """A shipping address (name, phone, province, city, district, detail): province / city / district stay (they
    say where a parcel goes, not to whom); recipient, mobile and street line are masked."""
    out = dict(value)
    for key, fn in (("name", mask_name), ("phone", mask_phone), ("detail", mask_street)):
        if isinstance(out.get(key), str) and out[key]:
            out[key] = fn(out[key])
    return out


# a field name → its masker; the same names mean the same thing across the project's records
FIELD_MASKS: dict[str, Callable[[str], str]] = {
    "name": mask_name,
    "customer_name": mask_name,
    "phone": mask_phone,
    "mobile": mask_phone,
    "email": mask_email,
    "recipient": mask_contact,
    "external_userid": mask_token,
    "unionid": mask_token,
    "openid": mask_token,
}
# identifier types whose value is personal data (the others, e.g. member_id or customer_id, are the brand's own ids)
ID_TYPE_MASKS: dict[str, Callable[[str], str]] = {
    "phone": mask_phone,
    "email": mask_email,
    "external_userid": mask_token,
    "unionid": mask_token,
    "openid": mask_token,
}


def mask_identifier(id_type: str, value: str) -> str:
    """The display value of an identifier: masked when its type is personal data, else unchanged."""
    fn = ID_TYPE_MASKS.get(id_type)
    return fn(value) if fn and value else value


def mask_record(row: Mapping[str, Any], fields: Iterable[str] | None = None) -> dict[str, Any]:
    """``row`` with its personal fields masked (every name of ``FIELD_MASKS``, or only ``fields``); an
    ``address`` mapping is masked with ``mask_address`` and an (``id_type``, ``id_value``) pair by its type."""
    out = dict(row)
    names = FIELD_MASKS.keys() if fields is None else fields
    for key in names:
        value = out.get(key)
        if isinstance(value, str) and value and key in FIELD_MASKS:
            out[key] = FIELD_MASKS[key](value)
    if isinstance(out.get("address"), Mapping):
        out["address"] = mask_address(out["address"])
    if isinstance(out.get("id_type"), str) and isinstance(out.get("id_value"), str):
        out["id_value"] = mask_identifier(out["id_type"], out["id_value"])
    return out


def mask_records(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``mask_record`` of each row."""
    return [mask_record(r) for r in rows]
