"""Which guide a campaign join is credited to (per-guide tracing, seed 004).

In order: (1) the guide of the link the visitor came by — a guide's own promotion link carries ``g=``, the guide
signed together with the campaign id (``guide_link``), so it cannot be forged nor reused for another campaign;
(2) the sharer's guide, for people invited through a share link; (3) the customer's own guide
(``siyu.services.guide_work.pool.owner_of``: the pool owner, else the guide of their latest active WeCom
relation). None when nothing names one.
"""

from __future__ import annotations

import logging
from typing import Literal

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select

from siyu.domain.identity import IdType
from siyu.domain.models import Identity
from siyu.errors import NotFound
from siyu.services.campaigns.definitions import get_row
from siyu.services.campaigns.people import person
from siyu.services.context import Context
from siyu.stores.state.campaign_models import CampaignParticipantRow

log = logging.getLogger(__name__)
Source = Literal["link", "sharer", "customer", "none"]
_SALT = "siyu-campaign-guide"


def _serializer(ctx: Context) -> URLSafeSerializer:
    got = ctx.extras.get("campaign_guide_serializer")
    if got is None:
        got = ctx.extras.setdefault("campaign_guide_serializer", URLSafeSerializer(ctx.settings.secret_key, _SALT))
    return got  # type: ignore[no-any-return]


def sign_guide(ctx: Context, campaign_id: str, guide_id: str) -> str:
    """The ``g=`` value of a guide's promotion link of ``campaign_id``."""
    return str(_serializer(ctx).dumps([campaign_id, guide_id]))


def read_guide(ctx: Context, campaign_id: str, g: str) -> str | None:
    """The guide a ``g=`` value names, or None when it is forged, malformed or made for another campaign."""
    if not g:
        return None
    try:
        data = _serializer(ctx).loads(g[:300])
    except BadSignature:
        log.info("campaign %s: a g= parameter with a bad signature was ignored", campaign_id)
        return None
    if not (isinstance(data, list) and len(data) == 2 and data[0] == campaign_id and isinstance(data[1], str)):
        return None
    return data[1] or None


def _guide_exists(ctx: Context, brand_id: str, guide_id: str) -> bool:
    t = ctx.warehouse.table("guides")
    return int(t.filter(t.brand_id == brand_id, t.guide_id == guide_id).count().execute()) > 0


def guide_link(ctx: Context, brand_id: str, campaign_id: str, guide_id: str) -> dict[str, str]:
    """A guide's own promotion link of a campaign (path under the public site): joins through it are credited to
    the guide. NotFound for an unknown campaign or guide."""
    row = get_row(ctx, brand_id, campaign_id)
    if not _guide_exists(ctx, brand_id, guide_id):
        raise NotFound(f"guide {guide_id!r} not found; use a guide id of the brand (/api/guides)", "guide_id")
    g = sign_guide(ctx, row.id, guide_id)
    return {"campaign_id": row.id, "guide_id": guide_id, "g": g, "path": f"/m/c/{row.id}?g={g}"}


def _sharer_guide(ctx: Context, campaign_id: str, sharer_token: str) -> str | None:
    with ctx.sessions() as s:
        got = s.execute(
            select(CampaignParticipantRow.campaign_id, CampaignParticipantRow.guide_id).where(
                CampaignParticipantRow.token == sharer_token[:64]
            )
        ).first()
    return got.guide_id if got is not None and got.campaign_id == campaign_id and got.guide_id else None


def _customer_guide(ctx: Context, brand_id: str, identity: Identity) -> str | None:
    from siyu.services.guide_work.pool import owner_of

    who = person(ctx, brand_id, identity)
    if who.customer_id:
        return owner_of(ctx, brand_id, who.customer_id)
    if identity.type == IdType.EXTERNAL_USERID:  # a WeCom contact OneID has not resolved yet
        rel = ctx.warehouse.table("relations")
        rel = rel.filter(rel.brand_id == brand_id, rel.external_userid == identity.value, rel.state == "active")
        rows = rel.order_by([rel.added_at.desc(), rel.guide_id]).select("guide_id").limit(1).to_pyarrow().to_pylist()
        return str(rows[0]["guide_id"]) if rows else None
    return None


def join_guide(
    ctx: Context,
    brand_id: str,
    campaign_id: str,
    identity: Identity,
    *,
    g: str = "",
    sharer_token: str | None = None,
) -> tuple[str | None, Source]:
    """The guide a join is credited to and where it came from (``link``, ``sharer``, ``customer`` or ``none``)."""
    linked = read_guide(ctx, campaign_id, g)
    if linked:
        return linked, "link"
    if sharer_token:
        shared = _sharer_guide(ctx, campaign_id, sharer_token)
        if shared:
            return shared, "sharer"
    own = _customer_guide(ctx, brand_id, identity)
    return (own, "customer") if own else (None, "none")
