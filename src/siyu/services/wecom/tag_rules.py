"""Rule-based tags: a segment → a WeCom corp tag. On every refresh the segment is recomputed, customers who entered
get the tag marked (``mark_tag``, on each guide relation they have), customers who left get it removed.

The rule remembers each (member, customer) it marked (``wecom_tag_marks``), so it only removes what it put there.
Calls go through the client's shared per-company rate limiter (inside WeCom's published limits); one refresh
makes at most ``MAX_CALLS`` calls and reports what remains for the next one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select

from siyu.connectors.wecom.client import WeComClient
from siyu.connectors.wecom.errors import WeComError
from siyu.domain.models import Role
from siyu.services import segments
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import Conflict, Forbidden, NotFound, SiyuError
from siyu.services.oneid import now as wh_now
from siyu.services.wecom import audience, tags
from siyu.services.wecom.config import client_for, get_config
from siyu.stores.state.models import utcnow
from siyu.stores.state.wecom_ops_models import WeComTagMarkRow, WeComTagRuleRow

MAX_CALLS = 20_000
MAX_RULES = 200
GONE = {40096, 84061}  # the customer or the relation is no longer there: nothing to (un)mark


def _editor(user: User) -> None:
    if user.role == Role.GUIDE:
        raise Forbidden("guides cannot change tag rules; ask an operator or admin", "role")


def _public(r: WeComTagRuleRow, names: dict[str, str]) -> dict[str, Any]:
    return {
        "id": r.id,
        "segment_id": r.segment_id,
        "tag_id": r.tag_id,
        "tag_name": names.get(r.tag_id, ""),
        "created_by": r.created_by,
        "created_at": r.created_at.isoformat(),
        "refreshed_at": r.refreshed_at.isoformat() if r.refreshed_at else None,
        "last_result": r.last_result or {},
    }


def _tag_names(ctx: Context, brand_id: str) -> dict[str, str]:
    return {
        str(t): str(n)
        for t, n in ctx.warehouse.fetch(
            "SELECT tag_id, name FROM tags WHERE brand_id = ? AND source = 'wecom'", [brand_id]
        )
    }


def create_rule(
    ctx: Context,
    user: User,
    segment_id: str,
    tag_id: str = "",
    tag_name: str = "",
    group_name: str = "",
    client: WeComClient | None = None,
) -> dict[str, Any]:
    """A rule tagging the segment's members with ``tag_id`` (or a new tag ``tag_name`` in ``group_name``)."""
    _editor(user)
    segments.get_segment(ctx, user, segment_id)
    client = client or client_for(get_config(ctx, user.brand_id))
    if not tag_id:
        if not tag_name:
            raise SiyuError("give tag_id (an existing corp tag) or tag_name (a new one)", "tag_id")
        tag_id = str(tags.create_tag(ctx, user, client, tag_name, group_name or "siyu 分群")["id"])
    elif not client.get_corp_tags(tag_ids=[tag_id]):
        raise NotFound(f"corp tag {tag_id!r} not found in WeCom; sync tags or pick another", "tag_id")
    with ctx.sessions() as s, s.begin():
        n = len(list(s.scalars(select(WeComTagRuleRow.id).where(WeComTagRuleRow.brand_id == user.brand_id))))
        if n >= MAX_RULES:
            raise SiyuError(f"a brand may have at most {MAX_RULES} tag rules", "segment_id")
        dup = s.scalar(
            select(WeComTagRuleRow.id).where(
                WeComTagRuleRow.brand_id == user.brand_id,
                WeComTagRuleRow.segment_id == segment_id,
                WeComTagRuleRow.tag_id == tag_id,
            )
        )
        if dup is not None:
            raise Conflict(f"rule {dup} already tags segment {segment_id!r} with {tag_id!r}", "tag_id")
        row = WeComTagRuleRow(
            brand_id=user.brand_id, segment_id=segment_id, tag_id=tag_id, created_by=user.username, last_result={}
        )
        s.add(row)
        s.flush()
        rid = row.id
    tags.sync_corp_tags(ctx, user.brand_id, client)
    return get_rule(ctx, user, rid)


def _rule(ctx: Context, brand_id: str, rule_id: int) -> WeComTagRuleRow:
    with ctx.sessions() as s:
        row = s.get(WeComTagRuleRow, rule_id)
        if row is None or row.brand_id != brand_id:
            raise NotFound(f"tag rule {rule_id} not found", "rule_id")
        s.expunge(row)
        return row


def get_rule(ctx: Context, user: User, rule_id: int) -> dict[str, Any]:
    row = _rule(ctx, user.brand_id, rule_id)
    with ctx.sessions() as s:
        marked = len(list(s.scalars(select(WeComTagMarkRow.id).where(WeComTagMarkRow.rule_id == rule_id))))
    return {**_public(row, _tag_names(ctx, user.brand_id)), "marked": marked}


def list_rules(ctx: Context, user: User) -> list[dict[str, Any]]:
    with ctx.sessions() as s:
        rows = list(s.scalars(select(WeComTagRuleRow).where(WeComTagRuleRow.brand_id == user.brand_id)))
        for r in rows:
            s.expunge(r)
    names = _tag_names(ctx, user.brand_id)
    return [_public(r, names) for r in sorted(rows, key=lambda r: r.id)]


def refresh_rule(
    ctx: Context, user: User, rule_id: int, client: WeComClient | None = None, refresh_segment: bool = True
) -> dict[str, Any]:
    """Recompute the segment, mark the tag on entrants and remove it from leavers (in WeCom and here)."""
    _editor(user)
    rule = _rule(ctx, user.brand_id, rule_id)
    brand = user.brand_id
    client = client or client_for(get_config(ctx, brand))
    if refresh_segment:
        audience.fresh_segment(ctx, brand, rule.segment_id)
    want = {(r.userid, r.external_userid): r.customer_id for r in audience.relations(ctx, brand, rule.segment_id)}
    with ctx.sessions() as s:
        have = {
            (m.userid, m.external_userid)
            for m in s.scalars(select(WeComTagMarkRow).where(WeComTagMarkRow.rule_id == rule_id))
        }
    to_add = sorted(set(want) - have)
    to_remove = sorted(have - set(want))
    budget = MAX_CALLS
    added: list[tuple[str, str]] = []
    removed: list[tuple[str, str]] = []
    errors: list[str] = []
    for pair in to_add:
        if budget <= 0:
            break
        budget -= 1
        try:
            client.mark_tag(pair[0], pair[1], add=[rule.tag_id])
            added.append(pair)
        except WeComError as err:
            if err.errcode not in GONE:
                errors.append(f"{pair[1]}@{pair[0]}: {err.message}")
    for pair in to_remove:
        if budget <= 0:
            break
        budget -= 1
        try:
            client.mark_tag(pair[0], pair[1], remove=[rule.tag_id])
        except WeComError as err:
            if err.errcode not in GONE:
                errors.append(f"{pair[1]}@{pair[0]}: {err.message}")
                continue
        removed.append(pair)
    now = utcnow()
    with ctx.sessions() as s, s.begin():
        if added:
            s.execute(
                insert(WeComTagMarkRow),
                [
                    {
                        "rule_id": rule_id,
                        "userid": u,
                        "external_userid": e,
                        "customer_id": want[(u, e)],
                        "marked_at": now,
                    }
                    for u, e in added
                ],
            )
        for u, e in removed:
            s.execute(
                delete(WeComTagMarkRow).where(
                    WeComTagMarkRow.rule_id == rule_id,
                    WeComTagMarkRow.userid == u,
                    WeComTagMarkRow.external_userid == e,
                )
            )
        still = {
            m
            for (m,) in s.execute(
                select(WeComTagMarkRow.external_userid).where(WeComTagMarkRow.rule_id == rule_id)
            ).all()
        }
    _mirror(ctx, brand, rule.tag_id, {e for _, e in added}, {e for _, e in removed} - still)
    result = {
        "members": len({e for _, e in want}),
        "marked": len(added),
        "removed": len(removed),
        "remaining": len(to_add) + len(to_remove) - len(added) - len(removed) - len(errors),
        "errors": errors[:20],
        "error_count": len(errors),
    }
    with ctx.sessions() as s, s.begin():
        r = s.get(WeComTagRuleRow, rule_id)
        assert r is not None
        r.refreshed_at, r.last_result = now, result
    return {**get_rule(ctx, user, rule_id), "result": result}


def _mirror(ctx: Context, brand_id: str, tag_id: str, add: set[str], drop: set[str]) -> None:
    """The warehouse's ``wecom`` customer tags follow what was marked in WeCom."""
    if not add and not drop:
        return
    with ctx.warehouse.write_lock, ctx.warehouse.transaction() as cur:
        if drop:
            cur.execute(
                "DELETE FROM identifier_tags WHERE brand_id = ? AND id_type = 'external_userid' AND source = 'wecom' "
                "AND tag_id = ? AND list_contains(?, id_value)",
                [brand_id, tag_id, sorted(drop)],
            )
        if add and cur.execute("SELECT 1 FROM tags WHERE brand_id = ? AND tag_id = ?", [brand_id, tag_id]).fetchone():
            cur.executemany(
                "INSERT INTO identifier_tags (brand_id, id_type, id_value, tag_id, source, created_at) "
                "VALUES (?, 'external_userid', ?, ?, 'wecom', ?) ON CONFLICT DO NOTHING",
                [[brand_id, e, tag_id, wh_now()] for e in sorted(add)],
            )


def delete_rule(ctx: Context, user: User, rule_id: int, client: WeComClient | None = None) -> dict[str, int]:
    """Remove the rule and take its tag off everyone it marked."""
    _editor(user)
    rule = _rule(ctx, user.brand_id, rule_id)
    client = client or client_for(get_config(ctx, user.brand_id))
    with ctx.sessions() as s:
        marks = [
            (m.userid, m.external_userid)
            for m in s.scalars(select(WeComTagMarkRow).where(WeComTagMarkRow.rule_id == rule_id))
        ]
    for u, e in marks:
        try:
            client.mark_tag(u, e, remove=[rule.tag_id])
        except WeComError as err:
            if err.errcode not in GONE:
                raise
    _mirror(ctx, user.brand_id, rule.tag_id, set(), {e for _, e in marks})
    with ctx.sessions() as s, s.begin():
        s.execute(delete(WeComTagMarkRow).where(WeComTagMarkRow.rule_id == rule_id))
        s.execute(delete(WeComTagRuleRow).where(WeComTagRuleRow.id == rule_id))
    return {"removed": len(marks)}
