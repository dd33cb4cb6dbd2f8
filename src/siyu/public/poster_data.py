"""A participant's poster: the campaign variant's template (else the campaign's, else the default one) filled with
the campaign's copy, the rules as benefit points, the scarcity of the first reward, the end time and the
participant's help link."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC
from typing import Any

from siyu.domain.campaign.definition import CampaignDefinition
from siyu.domain.poster import PosterData, PosterError, PosterTemplate, default_template, parse_template
from siyu.services import posters
from siyu.services.context import Context

log = logging.getLogger(__name__)


def template_of(cd: CampaignDefinition, variant: str | None) -> PosterTemplate:
    """The variant's poster template (A/B on posters), else the campaign's, else the default. Both are checked when
    the campaign is saved (``parse_campaign``); one stored before that check and broken falls back (logged)."""
    v = cd.variant(variant)
    for where, raw in ((f"variant {variant}", v.poster if v is not None else None), ("campaign", cd.poster)):
        if raw:
            try:
                return parse_template(raw)
            except PosterError as exc:
                log.warning("the %s poster is invalid (%s); using the next one", where, exc.message)
    return default_template()


def poster_png(
    ctx: Context,
    row: Any,
    cd: CampaignDefinition,
    participant: Any,
    view: Mapping[str, Any],
    help_url: str,
    nickname: str,
) -> bytes:
    """The PNG poster of ``participant`` (cached by template + data)."""
    from siyu.services import brands
    from siyu.services.rewards import get_reward

    stock = None
    first = next(iter(cd.reward_ids()), None)
    if first:
        r = get_reward(ctx, row.brand_id, first)
        stock = r.get("stock_left") if r else None
    try:
        brand = brands.get_brand(ctx, row.brand_id).name
    except Exception:  # a poster never fails on the brand name
        brand = ""
    data = PosterData(
        nickname=nickname[:64],
        title=view["title"][:200],
        subtitle=(view["copy_text"] or cd.description)[:400],
        brand=brand[:100],
        benefits=[line[:200] for line in view["rules"][:12]],
        stock_left=stock if isinstance(stock, int) and stock >= 0 else None,
        ends_at=view["ends_at"].replace(tzinfo=UTC),
        qr_url=help_url[:1000],
    )
    return posters.poster_png(ctx, template_of(cd, participant.variant), data)
