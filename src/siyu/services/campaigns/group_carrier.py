"""The ``wecom_group`` carrier (承接载体: join a WeCom customer group): a help waits (``pending_carrier``) until the
helper joins the campaign's group ``carrier.chat_id``.

WeCom's ``change_external_chat`` callback (update / ``add_member``, with ``JoinScene`` and ``MemChangeCnt``) does
not name who joined, so ``siyu.services.wecom.apply`` fetches the group (``groupchat/get``), reconciles the
members and passes the external members that were not in the group before; each is matched to pending helps
by their external_userid / unionid or any identifier OneID holds for their customer (as the ``wecom_guide``
carrier). A member already in the group before the help does not confirm it (they did not join for the
campaign)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select

from siyu.domain.models import Identity
from siyu.services.campaigns.definitions import definition_of, utcnow
from siyu.services.context import Context
from siyu.stores.state.campaign_models import CampaignRow


def group_campaigns(ctx: Context, brand_id: str, chat_id: str) -> set[str]:
    """Ids of the brand's pilot / live / ended campaigns whose carrier is joining the group ``chat_id``."""
    with ctx.sessions() as s:
        rows = s.scalars(
            select(CampaignRow).where(
                CampaignRow.brand_id == brand_id, CampaignRow.status.in_(("pilot", "live", "ended"))
            )
        ).all()
    out = set()
    for r in rows:
        carrier = definition_of(r).carrier
        if carrier.kind == "wecom_group" and carrier.chat_id == chat_id:
            out.add(r.id)
    return out


def confirm_group_join(
    ctx: Context,
    brand_id: str,
    chat_id: str,
    identities: Sequence[Identity],
    *,
    ref: str = "",
    at: datetime | None = None,
) -> int:
    """The person behind ``identities`` joined the group ``chat_id``: their pending helps in campaigns whose
    carrier is that group count now. Idempotent; returns how many were counted."""
    from siyu.services.campaigns.participation import _pending_helps, count_pending

    ids = group_campaigns(ctx, brand_id, chat_id)
    if not ids:
        return 0
    pending = [h for h in _pending_helps(ctx, brand_id, list(identities), None) if h.campaign_id in ids]
    return count_pending(ctx, brand_id, pending, at or utcnow(), ref)
