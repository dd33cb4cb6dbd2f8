"""Request checks shared by the handlers: each failure answers the documented errcode."""

from __future__ import annotations

import base64
from typing import Any

from tests.wecom_server.codes import WeComErr, need


def text(q: dict[str, Any], name: str, max_chars: int, required: bool = False) -> str:
    """A string field of at most ``max_chars`` characters (40058 otherwise)."""
    v = q.get(name)
    if v is None or v == "":
        need(not required, 40058, f"{name} missing")
        return ""
    need(isinstance(v, str), 40058, f"{name} must be a string")
    need(len(v) <= max_chars, 40058, f"{name} exceeds {max_chars} chars")
    return str(v)


def items(q: dict[str, Any], name: str, max_items: int, required: bool = False) -> list[Any]:
    """A list field of at most ``max_items`` entries (40058 otherwise)."""
    v = q.get(name)
    if v is None:
        need(not required, 40058, f"{name} missing")
        return []
    need(isinstance(v, list), 40058, f"{name} must be a list")
    need(not required or len(v) > 0, 40058, f"{name} empty")
    need(len(v) <= max_items, 40058, f"{name} exceeds {max_items} items")
    return list(v)


def integer(q: dict[str, Any], name: str, default: int, lo: int, hi: int) -> int:
    """An integer in ``lo..hi`` (40058 otherwise); ``default`` when absent or 0."""
    v = q.get(name)
    if v in (None, "", 0, "0"):
        return default
    try:
        n = int(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise WeComErr(40058, f"{name} must be an integer") from None
    need(lo <= n <= hi, 40058, f"{name} must be {lo}..{hi}")
    return n


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def decode_cursor(q: dict[str, Any]) -> int:
    """Offset of an opaque ``cursor`` (0 when absent; 40058 when not ours)."""
    c = q.get("cursor") or ""
    if not c:
        return 0
    try:
        raw = base64.urlsafe_b64decode(str(c) + "=" * (-len(str(c)) % 4)).decode()
        need(raw.startswith("o:"), 40058, "invalid cursor")
        return int(raw[2:])
    except (ValueError, UnicodeDecodeError):
        raise WeComErr(40058, "invalid cursor") from None


def page(rows: list[Any], q: dict[str, Any], limit: int) -> tuple[list[Any], str]:
    """Rows of this page and the next cursor ("" at the end)."""
    start = decode_cursor(q)
    chunk = rows[start : start + limit]
    return chunk, encode_cursor(start + limit) if start + limit < len(rows) else ""
