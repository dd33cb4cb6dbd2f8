"""How values are shown to people (CLI and console alike)."""

from __future__ import annotations

from typing import Any


def display_value(value: Any) -> str:
    """Text for a table cell: empty for None, datetimes to the minute, dates as ISO, anything else as str()."""
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return str(value.isoformat(sep=" ", timespec="minutes") if hasattr(value, "hour") else value.isoformat())
    return str(value)
