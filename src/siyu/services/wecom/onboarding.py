"""What happens when a channel code brings a new contact (called from ``apply`` after the relation is written):

1. the add is recorded against its code (one row per callback: the idempotency key of every step below) and the
   relation is attributed to the code's channel;
2. the group invite is prepared: the first group rule the customer's attributes match (city, traits such as
   interests) gives ≤ 5 chats, whose join code (``groupchat/add_join_way``, made once per code and rule) becomes a
   link attachment;
3. the welcome (text with {name}/{guide}/{coupon}, the code's attachments, the invite) is sent within WeCom's
   20 s window (``welcome``); when no welcome could go out, the invite follows as a 1:1 message task for the
   guide (``add_msg_template``);
4. the contact is tagged with the code's channel (corp tag group 渠道, tag made when missing; ``mark_tag``);
5. the code's guides are re-pointed if a guide just reached their daily cap (``channel_codes.refresh_rotation``).

A step that WeCom refuses is recorded on the row (``failed`` with the reason) and the others go on; an unreachable
WeCom raises, so the callback is retried and only the unfinished steps run again.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from siyu.connectors.wecom.client import WeComClient
from siyu.connectors.wecom.errors import WeComError, WeComUnavailable
from siyu.domain import channel_code as rules
from siyu.domain import wecom_events as ev
from siyu.services.context import Context
from siyu.services.wecom import channel_codes, welcome
from siyu.services.wecom import relations as rel
from siyu.stores.state.channel_code_models import ChannelCodeAddRow, ChannelCodeRow
from siyu.stores.state.models import utcnow

log = logging.getLogger(__name__)
TAG_GROUP = "渠道"  # the corp tag group channel tags live in


def on_contact_added(
    ctx: Context,
    brand_id: str,
    event: ev.ContactAdded,
    new: rel.NewRelation,
    ref: str,
    client: WeComClient | None,
    guide_id: str,
) -> str:
    """Onboard a contact a channel code brought; returns what was done ("" when the state is not a code's)."""
    code = channel_codes.code_for_state(ctx, brand_id, event.state)
    if code is None:
        return ""
    add = _record(ctx, brand_id, code, event, guide_id, ref)
    _attribute(ctx, brand_id, code, new.external_userid, guide_id)
    if client is None:
        return f"; code {code.id}: attributed (no API secret: no welcome, tag or invite)"
    guide_name = _guide_name(ctx, brand_id, guide_id)
    attachment, invite_note = (None, "") if add.invite != "pending" else _invite(ctx, brand_id, code, new, client)
    text, attachments = welcome.compose(code.welcome or {}, new.name, guide_name)
    if attachment is not None:
        attachments.append(attachment)
    w = welcome.send(ctx, add.id, client, event.welcome_code, event.create_time, text, attachments)
    invite = _finish_invite(ctx, add, event, client, w, attachment, invite_note)
    tag = _tag(ctx, brand_id, code, add, client)
    try:
        channel_codes.refresh_rotation(ctx, brand_id, code.id, client)
    except WeComError as err:
        log.warning("channel code %s: rotation not updated: %s", code.id, err)
    return f"; code {code.id}: welcome {w}, tag {tag}, invite {invite}"


# -- record and attribute -------------------------------------------------------------------------------------
def _record(
    ctx: Context, brand_id: str, code: ChannelCodeRow, event: ev.ContactAdded, guide_id: str, ref: str
) -> ChannelCodeAddRow:
    """The add's onboarding row (made once per callback ref; a re-run finds it)."""
    row = ChannelCodeAddRow(
        brand_id=brand_id,
        code_id=code.id,
        ref=ref[:64],
        guide_id=guide_id,
        userid=event.user_id,
        external_userid=event.external_user_id,
        create_time=event.create_time,
        day=rules.business_day(event.at).isoformat(),
    )
    try:
        with ctx.sessions() as s, s.begin():
            s.add(row)
            s.flush()
            s.expunge(row)
            return row
    except IntegrityError:
        with ctx.sessions() as s:
            old = s.scalars(
                select(ChannelCodeAddRow).where(ChannelCodeAddRow.brand_id == brand_id, ChannelCodeAddRow.ref == ref)
            ).one()
            s.expunge(old)
            return old


def _attribute(ctx: Context, brand_id: str, code: ChannelCodeRow, ext: str, guide_id: str) -> None:
    with ctx.warehouse.write_lock, ctx.warehouse.transaction() as cur:
        cur.execute(
            "UPDATE relations SET channel_id = ? WHERE brand_id = ? AND external_userid = ? AND guide_id = ?",
            [code.channel_id, brand_id, ext, guide_id],
        )


def _guide_name(ctx: Context, brand_id: str, guide_id: str) -> str:
    rows = ctx.warehouse.fetch("SELECT name FROM guides WHERE brand_id = ? AND guide_id = ?", [brand_id, guide_id])
    return str(rows[0][0]) if rows else ""


def _set(ctx: Context, add_id: int, **values: Any) -> None:
    with ctx.sessions() as s, s.begin():
        s.execute(update(ChannelCodeAddRow).where(ChannelCodeAddRow.id == add_id).values(updated_at=utcnow(), **values))


# -- group invite ---------------------------------------------------------------------------------------------
def attributes(ctx: Context, brand_id: str, new: rel.NewRelation) -> dict[str, Any]:
    """The customer's city and traits, when OneID already knows them (by external_userid or unionid)."""
    ids = rel.identities(new)
    cond = " OR ".join("(i.id_type = ? AND i.id_value = ?)" for _ in ids)
    rows = ctx.warehouse.fetch(
        "SELECT c.city, c.traits FROM identities i JOIN customers c ON c.brand_id = i.brand_id "
        f"AND c.customer_id = i.customer_id WHERE i.brand_id = ? AND ({cond}) LIMIT 1",
        [brand_id, *[v for i in ids for v in (i.type, i.value)]],
    )
    if not rows:
        return {}
    city, traits = rows[0]
    out: dict[str, Any] = json.loads(traits) if isinstance(traits, str) and traits else dict(traits or {})
    if city:
        out["city"] = city
    return out


def _join_way(ctx: Context, code: ChannelCodeRow, idx: int, rule: rules.GroupRule, client: WeComClient) -> str:
    """The QR URL of the code's join way for rule ``idx`` (made once: add_join_way, then get_join_way)."""
    known = (code.join_ways or {}).get(str(idx))
    if known and known.get("qr_code"):
        return str(known["qr_code"])
    config_id = client.add_join_way(list(rule.chat_ids), state=code.state, auto_create_room=0)
    way = client.get_join_way(config_id)
    qr = str(way.get("qr_code") or "")
    with ctx.sessions() as s, s.begin():
        row = s.get(ChannelCodeRow, code.id)
        if row is not None:
            row.join_ways = {**(row.join_ways or {}), str(idx): {"config_id": config_id, "qr_code": qr}}
    return qr


def _invite(
    ctx: Context, brand_id: str, code: ChannelCodeRow, new: rel.NewRelation, client: WeComClient
) -> tuple[dict[str, Any] | None, str]:
    """(the invite attachment, a note) — None when no rule matches or WeCom refused the join way."""
    rules_ = channel_codes.rules_of(code)
    if not rules_:
        return None, "no group rules"
    idx = rules.choose_group(rules_, attributes(ctx, brand_id, new))
    if idx is None:
        return None, "no rule matches the customer"
    rule = rules_[idx]
    try:
        qr = _join_way(ctx, code, idx, rule, client)
    except WeComUnavailable:
        raise
    except WeComError as err:
        return None, f"join way refused: {err.errcode} {err.meaning}"
    title = rule.name or "加入社群"
    link = {"title": title[:64], "picurl": qr, "desc": "点击查看群二维码，长按识别入群", "url": qr}
    return {"msgtype": "link", "link": link}, f"rule {idx} ({rule.name or rule.attribute or 'default'})"


def _finish_invite(
    ctx: Context,
    add: ChannelCodeAddRow,
    event: ev.ContactAdded,
    client: WeComClient,
    welcome_status: str,
    attachment: dict[str, Any] | None,
    note: str,
) -> str:
    if add.invite != "pending":
        return add.invite
    if attachment is None:
        status = "failed" if note.startswith("join way") else "none"
        _set(ctx, add.id, invite=status, invite_detail=note)
        return status
    if welcome_status in ("sent", "delivered_before"):
        _set(ctx, add.id, invite="attached", invite_detail=f"{note}: in the welcome message")
        return "attached"
    try:  # no welcome went out: a 1:1 message task for the guide to confirm in WeCom
        task = client.add_msg_template(event.user_id, [event.external_user_id], attachments=[attachment])
    except WeComUnavailable:
        raise
    except WeComError as err:
        _set(ctx, add.id, invite="failed", invite_detail=f"{note}: {err.errcode} {err.meaning}")
        return "failed"
    _set(ctx, add.id, invite="follow_up", invite_detail=f"{note}: message task {task.msgid} for the guide")
    return "follow_up"


# -- channel tag ----------------------------------------------------------------------------------------------
def _channel_tag(ctx: Context, brand_id: str, code: ChannelCodeRow, client: WeComClient, fresh: bool) -> str:
    """The corp tag id of the code's channel in group 渠道 (looked up, or made when missing)."""
    if code.tag_id and not fresh:
        return code.tag_id
    rows = ctx.warehouse.fetch(
        "SELECT name FROM channels WHERE brand_id = ? AND channel_id = ?", [brand_id, code.channel_id]
    )
    name = (str(rows[0][0]) if rows else code.channel_id)[:30]
    groups = client.get_corp_tags()
    group = next((g for g in groups if g.name == TAG_GROUP), None)
    tag_id = next((t.id for t in (group.tags if group else []) if t.name == name), "")
    if not tag_id:
        made = (
            client.add_corp_tags([name], group_id=group.group_id) if group else client.add_corp_tags([name], TAG_GROUP)
        )
        tag_id = next(t.id for t in made.tags if t.name == name)
        from siyu.services.wecom import tags

        tags.sync_corp_tags(ctx, brand_id, client)  # API changes make no callback: keep the warehouse's tag list
    with ctx.sessions() as s, s.begin():
        row = s.get(ChannelCodeRow, code.id)
        if row is not None:
            row.tag_id = tag_id
    code.tag_id = tag_id
    return tag_id


def _tag(ctx: Context, brand_id: str, code: ChannelCodeRow, add: ChannelCodeAddRow, client: WeComClient) -> str:
    if add.tag != "pending":
        return add.tag
    if not code.tag_channel:
        _set(ctx, add.id, tag="none")
        return "none"
    try:
        tag_id = _channel_tag(ctx, brand_id, code, client, fresh=False)
        try:
            client.mark_tag(add.userid, add.external_userid, add=[tag_id])
        except WeComError as err:
            if err.errcode != 40068:  # the tag was deleted in WeCom: find or make it again, once
                raise
            tag_id = _channel_tag(ctx, brand_id, code, client, fresh=True)
            client.mark_tag(add.userid, add.external_userid, add=[tag_id])
    except WeComUnavailable:
        raise
    except WeComError as err:
        _set(ctx, add.id, tag="failed")
        log.warning("channel code %s: tagging %s failed: %s", code.id, add.external_userid, err)
        return "failed"
    with ctx.warehouse.write_lock, ctx.warehouse.transaction() as cur:
        cur.execute(
            "INSERT INTO identifier_tags (brand_id, id_type, id_value, tag_id, source, created_at) "
            "SELECT ?, 'external_userid', ?, ?, 'wecom', ? WHERE EXISTS "
            "(SELECT 1 FROM tags WHERE brand_id = ? AND tag_id = ?) ON CONFLICT DO NOTHING",
            [brand_id, add.external_userid, tag_id, utcnow(), brand_id, tag_id],
        )
    _set(ctx, add.id, tag="marked")
    return "marked"
