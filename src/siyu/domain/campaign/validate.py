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
from siyu.domain.poster import PosterError, parse_template
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


def poster_problems(data: dict[str, Any]) -> list[dict[str, str]]:
    """The campaign's and each variant's poster template checked by the poster parser (``siyu.domain.poster``);
    a problem names the field inside the definition, e.g. ``variants[1].poster.elements[2].font_size``."""
    found: list[tuple[str, Any]] = [("poster", data.get("poster"))]
    variants = data.get("variants")
    if isinstance(variants, list):
        found += [(f"variants[{i}].poster", v.get("poster")) for i, v in enumerate(variants) if isinstance(v, dict)]
    out: list[dict[str, str]] = []
    for where, raw in found:
        if not raw or not isinstance(raw, dict):  # none / empty: the default poster; a non-object: pydantic says so
            continue
        try:
            parse_template(raw)
        except PosterError as exc:
            inner = exc.field or "template"
            field = where if inner == "template" else f"{where}.{inner}"
            out.append({"field": field, "message": exc.message.removeprefix(f"{inner}: ")})
    return out


def carrier_problems(data: dict[str, Any]) -> list[dict[str, str]]:
    """Carriers nothing can confirm yet: ``official_account`` needs the official account connector (not built)."""
    carrier = data.get("carrier")
    if isinstance(carrier, dict) and carrier.get("kind") == "official_account":
        return [
            {
                "field": "carrier.kind",
                "message": "the official_account carrier needs the official account (公众号) connector, which is "
                "not built yet — nothing could confirm a follow; use wecom_guide, wecom_group or h5",
            }
        ]
    return []


def parse_campaign(data: Any, *, strict: bool = True) -> CampaignDefinition:
    """Validate raw JSON into a ``CampaignDefinition``; raises ``CampaignError`` listing each field and its fix.
    ``strict`` (the default; off only to read back stored definitions) also checks the poster templates and
    refuses carriers that cannot be confirmed yet."""
    if not isinstance(data, dict):
        raise CampaignError([{"field": "definition", "message": "a campaign is a JSON object"}])
    problems: list[dict[str, str]] = [*carrier_problems(data), *poster_problems(data)] if strict else []
    try:
        cd = CampaignDefinition.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            p = _problem(err)
            if p not in problems:
                problems.append(p)
        raise CampaignError(problems) from None
    if problems:
        raise CampaignError(problems)
    try:
        ZoneInfo(cd.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise CampaignError(
            [{"field": "timezone", "message": f"{cd.timezone!r} is not a time zone; use e.g. Asia/Shanghai"}]
        ) from None
    return cd
