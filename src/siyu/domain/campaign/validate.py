"""Parse and check a campaign definition; every problem names the field (dotted path) and the fix.

``parse_campaign(data)`` returns a ``CampaignDefinition`` or raises ``CampaignError`` whose ``errors`` is a list of
``{"field", "message"}``.
"""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from siyu.domain.campaign.definition import CampaignDefinition
from siyu.errors import SiyuError

_BRACKET = re.compile(r"^Value error, \[([\w.]+)\] (.*)$", re.S)


class CampaignError(SiyuError):
    """An invalid campaign; ``errors``: [{field, message}]."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        text = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        super().__init__(f"invalid campaign — {text}", errors[0]["field"])
        self.errors = errors


def _path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "definition"


def _problem(err: Any) -> dict[str, str]:
    loc = tuple(err["loc"])
    msg = str(err["msg"])
    m = _BRACKET.match(msg)
    if m:
        return {"field": _path(loc + tuple(m.group(1).split("."))), "message": m.group(2)}
    kind = err["type"]
    if kind == "missing":
        return {"field": _path(loc), "message": f"required; add '{loc[-1]}'"}
    if kind == "extra_forbidden":
        return {"field": _path(loc), "message": f"unknown field '{loc[-1]}'; remove it (see docs/campaigns.md)"}
    if kind == "literal_error":
        return {"field": _path(loc), "message": msg + f" (got {err.get('input')!r})"}
    return {"field": _path(loc), "message": msg.removeprefix("Value error, ") + f" (got {err.get('input')!r})"}


def parse_campaign(data: Any) -> CampaignDefinition:
    """Validate raw JSON into a ``CampaignDefinition``; raises ``CampaignError`` listing each field and its fix."""
    if not isinstance(data, dict):
        raise CampaignError([{"field": "definition", "message": "a campaign is a JSON object"}])
    try:
        cd = CampaignDefinition.model_validate(data)
    except ValidationError as exc:
        problems: list[dict[str, str]] = []
        for err in exc.errors():
            p = _problem(err)
            if p not in problems:
                problems.append(p)
        raise CampaignError(problems) from None
    try:
        ZoneInfo(cd.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise CampaignError(
            [{"field": "timezone", "message": f"{cd.timezone!r} is not a time zone; use e.g. Asia/Shanghai"}]
        ) from None
    return cd
