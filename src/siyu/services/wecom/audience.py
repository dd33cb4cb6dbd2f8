"""Who a WeCom operation reaches: active customer ↔ guide relations, optionally of a segment's current members.

A segment holds customer_ids (OneID); WeCom knows external_userids. The bridge is ``identities`` (id_type
``external_userid``) and ``relations`` (active), with the guide's ``wecom_userid`` as the WeCom member.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from siyu.services.context import Context


@dataclass(frozen=True)
class Reach:
    """One active relation: the customer (``""`` when OneID has not resolved them yet), their external_userid,
    the guide and the guide's WeCom userid."""

    customer_id: str
    external_userid: str
    guide_id: str
    userid: str
    added_at: datetime | None


def relations(
    ctx: Context,
    brand_id: str,
    segment_id: str | None = None,
    guide_id: str | None = None,
    customer_id: str | None = None,
) -> list[Reach]:
    """Active relations (guides with a wecom_userid), of a segment's current members and/or one guide's customers
    and/or one customer."""
    sql = (
        "SELECT coalesce(i.customer_id, ''), r.external_userid, r.guide_id, g.wecom_userid, r.added_at "
        "FROM relations r JOIN guides g ON g.brand_id = r.brand_id AND g.guide_id = r.guide_id "
        "LEFT JOIN identities i ON i.brand_id = r.brand_id AND i.id_type = 'external_userid' "
        "AND i.id_value = r.external_userid "
        "WHERE r.brand_id = $b AND r.state = 'active' AND coalesce(g.wecom_userid, '') <> ''"
    )
    params: dict[str, object] = {"b": brand_id}
    if guide_id is not None:
        sql += " AND r.guide_id = $g"
        params["g"] = guide_id
    if customer_id is not None:
        sql += " AND i.customer_id = $c"
        params["c"] = customer_id
    if segment_id is not None:
        sql += (
            " AND i.customer_id IN (SELECT customer_id FROM segment_members WHERE brand_id = $b "
            "AND segment_id = $s AND exited_at IS NULL)"
        )
        params["s"] = segment_id
    sql += " ORDER BY r.external_userid, r.added_at DESC, r.guide_id"
    rows = ctx.warehouse.cursor().execute(sql, params).fetchall()
    return [Reach(str(c), str(e), str(g), str(u), a) for c, e, g, u, a in rows]


def customer_groups(ctx: Context, brand_id: str, customer_id: str) -> list[tuple[str, str, str]]:
    """(chat_id, guide_id, userid) of the customer groups the customer is in now, owned by a guide with a
    WeCom userid."""
    rows = (
        ctx.warehouse.cursor()
        .execute(
            "SELECT DISTINCT t.touchpoint_id, t.guide_id, g.wecom_userid FROM touchpoints t "
            "JOIN guides g ON g.brand_id = t.brand_id AND g.guide_id = t.guide_id "
            "JOIN group_members m ON m.brand_id = t.brand_id AND m.touchpoint_id = t.touchpoint_id "
            "AND m.left_at IS NULL "
            "JOIN identities i ON i.brand_id = m.brand_id AND i.id_type = m.id_type AND i.id_value = m.id_value "
            "WHERE t.brand_id = $b AND t.kind = 'customer_group' AND i.customer_id = $c "
            "AND coalesce(g.wecom_userid, '') <> '' ORDER BY 1",
            {"b": brand_id, "c": customer_id},
        )
        .fetchall()
    )
    return [(str(c), str(g), str(u)) for c, g, u in rows]


def guide_userid(ctx: Context, brand_id: str, guide_id: str) -> str:
    """The guide's WeCom userid ('' when the guide is unknown or has none)."""
    row = (
        ctx.warehouse.cursor()
        .execute(
            "SELECT coalesce(wecom_userid, '') FROM guides WHERE brand_id = ? AND guide_id = ?", [brand_id, guide_id]
        )
        .fetchone()
    )
    return str(row[0]) if row else ""


def fresh_segment(ctx: Context, brand_id: str, segment_id: str) -> None:
    """Recompute the segment's members now, so a send or a transfer reaches who matches today."""
    from siyu.services import segments
    from siyu.services.errors import SiyuError

    out = segments.refresh_segment(ctx, brand_id, segment_id)
    if out.get("error"):
        raise SiyuError(f"segment {segment_id!r} could not be refreshed: {out['error']}", "segment_id")
