"""The WeCom side of the ``wecom_guide`` and ``wecom_group`` carriers, called from ``siyu.services.wecom.apply``
(one line each): an add through a channel code confirms the person's pending helps in campaigns using that code;
a deletion by the customer (删粉, ``del_follow_user``) within ``min_keep_days`` revokes their counted helps; a
member who newly joined a customer group confirms their pending helps in campaigns whose carrier is that group
(``group_carrier``).

The channel code is read from the add's ``state`` (``siyu.domain.channel_code.parse_state``: ``c<code no.>...``);
the person from the contact's identifiers (external_userid, and unionid when WeCom gave it). A failure here is
logged and never blocks the WeCom event (the campaign can be reconciled later)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from siyu.connectors.wecom.models import GroupMember
from siyu.domain.channel_code import parse_state
from siyu.domain.models import Identity
from siyu.services.context import Context

log = logging.getLogger(__name__)


def on_contact_added(
    ctx: Context, brand_id: str, identities: Sequence[Identity], state: str, guide_id: str, ref: str, at: datetime
) -> int:
    """Count the pending helps of the person who just added ``guide_id`` through a campaign's channel code."""
    parsed = parse_state(state or "")
    if parsed is None:
        return 0
    from siyu.services.campaigns.participation import confirm_carrier

    try:
        return confirm_carrier(
            ctx, brand_id, list(identities), code_id=parsed.code_no, guide_id=guide_id, ref=ref, at=at
        )
    except Exception:  # never block WeCom processing on a campaign problem
        log.exception("campaign carrier confirmation failed for %s", ref)
        return 0


def on_contact_lost(ctx: Context, brand_id: str, identities: Sequence[Identity], guide_id: str, at: datetime) -> int:
    """Revoke the person's recent helps through ``guide_id`` (they deleted the guide within min_keep_days)."""
    from siyu.services.campaigns.participation import on_carrier_lost

    try:
        return on_carrier_lost(ctx, brand_id, list(identities), guide_id, at)
    except Exception:
        log.exception("campaign revoke failed for %s/%s", guide_id, [i.value for i in identities])
        return 0


def confirmed(
    ctx: Context, brand_id: str, identities: Sequence[Identity], state: str, guide_id: str, ref: str, at: datetime
) -> str:
    """``on_contact_added`` for ``apply``: a note for the callback's result ("" when nothing changed)."""
    n = on_contact_added(ctx, brand_id, identities, state, guide_id, ref, at)
    return f"; {n} campaign help(s) counted" if n else ""


def revoked(ctx: Context, brand_id: str, external_userid: str, guide_id: str, at: datetime) -> str:
    """``on_contact_lost`` for ``apply``: a note for the callback's result ("" when nothing changed)."""
    n = on_contact_lost(ctx, brand_id, [Identity("external_userid", external_userid)], guide_id, at)
    return f"; {n} campaign help(s) revoked" if n else ""


def group_joined(
    ctx: Context, brand_id: str, chat_id: str, members: Sequence[GroupMember], ref: str, at: datetime
) -> str:
    """External members who newly joined ``chat_id`` (an ``add_member`` callback): count their pending helps in
    campaigns whose carrier is that group. A note for the callback's result ("" when nothing changed)."""
    from siyu.services.campaigns.group_carrier import confirm_group_join

    n = 0
    for m in members:
        ids = [Identity("external_userid", m.userid)] + ([Identity("unionid", m.unionid)] if m.unionid else [])
        try:
            n += confirm_group_join(ctx, brand_id, chat_id, ids, ref=f"{ref}:{m.userid}:scene{m.join_scene}", at=at)
        except Exception:  # never block WeCom processing on a campaign problem
            log.exception("campaign group carrier failed for %s in %s", m.userid, chat_id)
    return f"; {n} campaign help(s) counted" if n else ""
