"""Apply one WeCom event to the warehouse (facts fetched from the API first, writes in one transaction).

Every write is idempotent (relation upserts, observations keyed by the callback id, tag sets), so an event
applied twice changes nothing the second time.  Used by ``processing`` (the queue side).
"""

from __future__ import annotations

import logging

from siyu.connectors.wecom.client import WeComClient
from siyu.connectors.wecom.errors import WeComError
from siyu.domain import wecom_events as ev
from siyu.errors import SiyuError
from siyu.services.campaigns import wecom_hooks as campaign_hooks
from siyu.services.context import Context
from siyu.services.wecom import groups, inheritance, onboarding, tags
from siyu.services.wecom import relations as rel

log = logging.getLogger(__name__)
GONE = {40096, 84061}  # `get` answers for a customer no longer there (invalid external userid, no relation)


def _enrich(client: WeComClient | None, e: ev.ContactAdded) -> tuple[rel.NewRelation, set[str] | None]:
    """The add event, completed by ``get`` (unionid, name, add_way, createtime, tags) when the API is configured."""
    base = rel.NewRelation(e.external_user_id, e.user_id, e.at, None, e.state)
    if client is None:
        return base, None
    try:
        detail = client.get_contact(e.external_user_id)
    except WeComError as err:
        if err.errcode in GONE:  # deleted again before we asked: the callback's own facts still stand
            log.info("WeCom get %s: %s; relation recorded from the callback alone", e.external_user_id, err.errcode)
            return base, None
        raise
    follow = next((f for f in detail.follow_users if f.userid == e.user_id), None)
    new = rel.NewRelation(
        e.external_user_id,
        e.user_id,
        rel.utc(follow.createtime) if follow and follow.createtime else e.at,
        follow.add_way if follow else None,
        e.state or (follow.state if follow else ""),
        detail.contact.unionid,
        detail.contact.name,
    )
    return new, {t for f in detail.follow_users for t in f.tag_ids}


def apply(
    ctx: Context,
    brand_id: str,
    event: ev.WeComEvent,
    ref: str,
    client: WeComClient | None,
    lookups: rel.Lookups | None = None,
) -> tuple[str, int]:
    """Apply one event to the warehouse; returns (what was done, observations written)."""
    lookups = lookups or rel.Lookups(brand_id)
    if isinstance(event, ev.ContactAdded):
        new, tag_ids = _enrich(client, event)  # API call outside the transaction
        with ctx.warehouse.write_lock, ctx.warehouse.transaction() as cur:
            guide = lookups.guide(cur, event.user_id)
            if guide is None:
                raise SiyuError(
                    f"UserID {event.user_id!r} is not a known guide's wecom_userid; import guides (with "
                    "wecom_userid) and the event is applied on its next retry",
                    field="UserID",
                )
            done = rel.upsert_relation(cur, brand_id, guide, new, ref, lookups)
            if tag_ids is not None:
                tags.set_customer_tags(cur, brand_id, new.external_userid, tag_ids)
            obs = rel.observe(cur, brand_id, new, ref)
        done += campaign_hooks.confirmed(ctx, brand_id, rel.identities(new), new.state, guide, ref, new.added_at)
        return done + onboarding.on_contact_added(ctx, brand_id, event, new, ref, client, guide), obs
    if isinstance(event, ev.ContactDeletedByCustomer | ev.ContactDeletedByMember):
        if isinstance(event, ev.ContactDeletedByCustomer):
            lost_by = "customer"
        else:
            lost_by = "transfer" if event.by_transfer else "guide"
        with ctx.warehouse.write_lock, ctx.warehouse.transaction() as cur:
            guide = lookups.guide(cur, event.user_id)
            if guide is None:
                return f"UserID {event.user_id!r} is not a known guide; nothing to end", 0
            done = rel.lose_relation(cur, brand_id, guide, event.external_user_id, event.at, lost_by)
        if lost_by == "customer":
            done += campaign_hooks.revoked(ctx, brand_id, event.external_user_id, guide, event.at)
        return done, 0
    if isinstance(event, ev.TagChanged) and client is not None:
        kept, removed = tags.sync_corp_tags(ctx, brand_id, client)
        return f"corp tags synced: {kept} tags, {removed} removed", 0
    if isinstance(event, ev.ContactEdited) and client is not None:
        try:
            detail = client.get_contact(event.external_user_id)
        except WeComError as err:
            if err.errcode in GONE:
                return f"customer gone ({err.errcode}); tags unchanged", 0
            raise
        with ctx.warehouse.write_lock, ctx.warehouse.transaction() as cur:
            added, removed = tags.set_customer_tags(
                cur, brand_id, event.external_user_id, {t for f in detail.follow_users for t in f.tag_ids}
            )
        return f"customer tags: {added} added, {removed} removed", 0
    if isinstance(event, ev.ChatChanged) and (client is not None or event.change_type == "dismiss"):
        return _chat(ctx, brand_id, event, client, ref)
    if isinstance(event, ev.TransferFailed):
        return inheritance.on_transfer_fail(ctx, brand_id, event), 0
    return f"recorded ({type(event).__name__}: {event.change_type}); no warehouse change", 0


def _chat(
    ctx: Context, brand_id: str, event: ev.ChatChanged, client: WeComClient | None, ref: str = ""
) -> tuple[str, int]:
    """A group changed: WeCom does not say who joined or left, so the group is fetched and reconciled; on
    ``add_member`` the external members not in the group before confirm campaigns' ``wecom_group`` carrier."""
    if event.change_type == "dismiss":
        with ctx.warehouse.write_lock, ctx.warehouse.transaction() as cur:
            return f"group dismissed; {groups.dismiss(cur, brand_id, event.chat_id, event.at)} memberships ended", 0
    assert client is not None
    try:
        chat = client.get_group_chat(event.chat_id)  # API call outside the transaction
    except WeComError as err:
        if err.errcode != 40050:
            raise
        with ctx.warehouse.write_lock, ctx.warehouse.transaction() as cur:  # the group no longer exists
            return f"group gone (40050); {groups.dismiss(cur, brand_id, event.chat_id, event.at)} memberships ended", 0
    stats = groups.GroupStats()
    adding = event.update_detail == "add_member"
    with ctx.warehouse.write_lock, ctx.warehouse.transaction() as cur:
        before = groups.active_members(cur, brand_id, chat.chat_id) if adding else set()
        groups.reconcile(cur, brand_id, chat, event.at, stats)
    done = f"group {event.change_type}: {stats.joined} joined, {stats.left} left"
    if adding:
        joined = [m for m in chat.members if m.type == 2 and m.userid not in before]
        done += campaign_hooks.group_joined(ctx, brand_id, chat.chat_id, joined, ref, event.at)
    return done, stats.observations
