"""Shared bits of the engagement rules: local days in the activity's time zone and validation errors."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, ValidationError

from siyu.errors import SiyuError

DEFAULT_TZ = "Asia/Shanghai"


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


def zone(name: str) -> ZoneInfo:
    """The time zone, or a SiyuError naming the field."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SiyuError(f"timezone: {name!r} is not a time zone; use e.g. Asia/Shanghai", "timezone") from None


def local_day(now_utc: datetime, tz: str = DEFAULT_TZ) -> date:
    """The calendar day in ``tz`` of a moment given in UTC (naive = UTC)."""
    aware = now_utc if now_utc.tzinfo else now_utc.replace(tzinfo=UTC)
    return aware.astimezone(zone(tz)).date()


def first_error(exc: ValidationError, prefix: str = "config") -> SiyuError:
    """The first pydantic problem as a SiyuError whose field is the path (``config.prizes.0.probability``)."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ()))
    msg = str(err["msg"]).removeprefix("Value error, ")
    named = re.match(r"^([A-Za-z_]+): ", msg)  # a model check names its field first ("prizes: ...")
    if named:
        loc = f"{loc}.{named.group(1)}" if loc else named.group(1)
        msg = msg[named.end() :]
    name = f"{prefix}.{loc}" if loc else prefix
    return SiyuError(f"{name}: {msg}", name)
