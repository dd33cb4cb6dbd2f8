"""Create a journey from a template (``siyu.domain.journey.templates``): save its audience segment, then the
journey triggered on entry into it (a draft; publish to start)."""

from __future__ import annotations

import json
from typing import Any

from siyu.domain.journey import seed_templates as seeds
from siyu.domain.journey.templates import SEGMENT_PLACEHOLDER, TEMPLATES, new_contact, win_back
from siyu.services import segments as segment_service
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import SiyuError
from siyu.services.journeys.definitions import JourneyInfo, create_journey, require_editor
from siyu.services.metrics import tables


def list_templates() -> list[dict[str, str]]:
    return [{"id": k, "description": v} for k, v in {**TEMPLATES, **seeds.SEED_TEMPLATES}.items()]


def build(ctx: Context, brand_id: str, template: str, params: dict[str, Any]) -> dict[str, Any]:
    """The template's segment and journey definitions for a brand (channels from the brand's data)."""
    try:
        if template == "win_back":
            return win_back(**params)
        if template == "new_contact":
            ch = tables(ctx, brand_id).channels
            channels = [
                r["channel_id"] for r in ch.select("channel_id").order_by("channel_id").to_pyarrow().to_pylist()
            ]
            return new_contact(channels, **params)
        if template in seeds.SEED_TEMPLATES:
            built: dict[str, Any] = getattr(seeds, template)(**params)
            return built
    except TypeError as exc:
        raise SiyuError(f"bad template parameters: {exc}", "params") from None
    raise SiyuError(
        f"unknown template {template!r}; use one of {', '.join({**TEMPLATES, **seeds.SEED_TEMPLATES})}", "template"
    )


def create_from_template(
    ctx: Context, user: User, template: str, name: str, params: dict[str, Any] | None = None
) -> JourneyInfo:
    """Save the audience segment (``<name> · 受众``) and the journey (draft) triggered on entry into it."""
    require_editor(user)
    built = build(ctx, user.brand_id, template, params or {})
    journey = json.loads(json.dumps(built["journey"]))
    segment_service.validate(built["segment"])
    from siyu.services.journeys.definitions import validate

    probe = json.loads(json.dumps(journey).replace(SEGMENT_PLACEHOLDER, "probe"))
    validate(probe)  # fail before anything is saved
    if journey["trigger"].get("segment_id") == SEGMENT_PLACEHOLDER:  # date / event triggers need no segment
        seg = segment_service.create_segment(
            ctx, user, f"{name} · 受众", built["segment"], f"journey template {template}"
        )
        journey["trigger"]["segment_id"] = seg.id
    return create_journey(ctx, user, name, journey, f"template {template}")
