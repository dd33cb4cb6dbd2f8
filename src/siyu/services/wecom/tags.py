"""WeCom corp tags ↔ the warehouse: WeCom → siyu (sync) and siyu → WeCom (create, rename, order, delete, mark).

Corp tags become ``tags`` rows (tag_id = WeCom's id, stable across renames; source ``wecom``); the tags members put
on a customer become ``identifier_tags`` on the customer's external_userid (source ``wecom``: the union over the
members following them).  Reconciling a customer replaces their ``wecom`` tags and leaves other sources alone.
Changes made from siyu go to WeCom first (WeCom's limits: names ≤ 30 characters, ≤ 3,000 corp tags; order: the
larger first) and the corp tag list is then synced back, so the warehouse always mirrors WeCom.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import duckdb
import pyarrow as pa

from siyu.connectors.wecom.client import WeComClient
from siyu.connectors.wecom.models import TagGroup
from siyu.domain.models import Role
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import Forbidden, NotFound, SiyuError
from siyu.services.oneid import now

SOURCE = "wecom"


def write_corp_tags(cur: duckdb.DuckDBPyConnection, brand_id: str, groups: list[TagGroup]) -> tuple[int, int]:
    """Upsert every corp tag; tags WeCom no longer has are removed (with their assignments). (kept, removed)."""
    rows = [(t.id, t.name, g.name) for g in groups for t in g.tags]
    cur.register(
        "_wtags",
        pa.table(
            {"tag_id": [r[0] for r in rows], "name": [r[1] for r in rows], "grp": [r[2] for r in rows]},
            schema=pa.schema([("tag_id", pa.string()), ("name", pa.string()), ("grp", pa.string())]),
        ),
    )
    try:
        cur.execute(
            "INSERT INTO tags (brand_id, tag_id, name, source) SELECT ?, tag_id, name, 'wecom' FROM _wtags "
            "ON CONFLICT (brand_id, tag_id) DO UPDATE SET name = excluded.name",
            [brand_id],
        )
        gone = [
            r[0]
            for r in cur.execute(
                "SELECT tag_id FROM tags WHERE brand_id = ? AND source = 'wecom' "
                "AND tag_id NOT IN (SELECT tag_id FROM _wtags)",
                [brand_id],
            ).fetchall()
        ]
    finally:
        cur.unregister("_wtags")
    for tid in gone:
        cur.execute("DELETE FROM identifier_tags WHERE brand_id = ? AND tag_id = ?", [brand_id, tid])
        cur.execute("DELETE FROM tags WHERE brand_id = ? AND tag_id = ?", [brand_id, tid])
    return len(rows), len(gone)


def write_customer_tags(
    cur: duckdb.DuckDBPyConnection, brand_id: str, exts: Iterable[str], pair_exts: list[str], pair_tags: list[str]
) -> tuple[int, int]:
    """Make each external_userid of ``exts``' ``wecom`` tags equal the union of the tag ids paired with it
    (``pair_exts[i]`` carries ``pair_tags[i]``; repeats are fine; unknown tag ids are skipped). Flat lists rather
    than a set per customer: a full sync's 100,000 sets kept the garbage collector busy. Returns (added, removed)."""
    schema = pa.schema([("ext", pa.string()), ("tag_id", pa.string())])
    cur.register("_wct", pa.table({"ext": pair_exts, "tag_id": pair_tags}, schema=schema))
    cur.register("_wcx", pa.table({"ext": pa.array(list(exts), pa.string())}))
    try:
        removed = cur.execute(
            "SELECT count(*) FROM identifier_tags i WHERE i.brand_id = $b AND i.id_type = 'external_userid' "
            "AND i.source = 'wecom' AND i.id_value IN (SELECT ext FROM _wcx) "
            "AND NOT EXISTS (SELECT 1 FROM _wct w WHERE w.ext = i.id_value AND w.tag_id = i.tag_id)",
            {"b": brand_id},
        ).fetchone()
        cur.execute(
            "DELETE FROM identifier_tags WHERE brand_id = $b AND id_type = 'external_userid' AND source = 'wecom' "
            "AND id_value IN (SELECT ext FROM _wcx) AND NOT EXISTS (SELECT 1 FROM _wct w "
            "WHERE w.ext = identifier_tags.id_value AND w.tag_id = identifier_tags.tag_id)",
            {"b": brand_id},
        )
        before = cur.execute("SELECT count(*) FROM identifier_tags WHERE brand_id = ?", [brand_id]).fetchone()
        cur.execute(
            "INSERT INTO identifier_tags (brand_id, id_type, id_value, tag_id, source, created_at) "
            "SELECT $b, 'external_userid', w.ext, w.tag_id, 'wecom', $now "
            "FROM (SELECT DISTINCT ext, tag_id FROM _wct) w JOIN tags t ON t.brand_id = $b AND t.tag_id = w.tag_id "
            "ON CONFLICT DO NOTHING",
            {"b": brand_id, "now": now()},
        )
        after = cur.execute("SELECT count(*) FROM identifier_tags WHERE brand_id = ?", [brand_id]).fetchone()
    finally:
        cur.unregister("_wct")
        cur.unregister("_wcx")
    return (int(after[0]) - int(before[0]) if after and before else 0), int(removed[0]) if removed else 0


def set_customer_tags(cur: duckdb.DuckDBPyConnection, brand_id: str, ext: str, tag_ids: set[str]) -> tuple[int, int]:
    """One customer's ``wecom`` tags := ``tag_ids`` (known tags only); the few-statement path for callbacks."""
    have = {
        r[0]
        for r in cur.execute(
            "SELECT tag_id FROM identifier_tags WHERE brand_id = ? AND id_type = 'external_userid' AND id_value = ? "
            "AND source = 'wecom'",
            [brand_id, ext],
        ).fetchall()
    }
    drop, add = have - tag_ids, tag_ids - have
    if drop:
        cur.execute(
            "DELETE FROM identifier_tags WHERE brand_id = ? AND id_type = 'external_userid' AND id_value = ? "
            "AND source = 'wecom' AND list_contains(?, tag_id)",
            [brand_id, ext, sorted(drop)],
        )
    added = 0
    if add:
        known = [
            r[0]
            for r in cur.execute(
                "SELECT tag_id FROM tags WHERE brand_id = ? AND list_contains(?, tag_id)", [brand_id, sorted(add)]
            ).fetchall()
        ]
        if known:
            cur.executemany(
                "INSERT INTO identifier_tags (brand_id, id_type, id_value, tag_id, source, created_at) "
                "VALUES (?, 'external_userid', ?, ?, 'wecom', ?) ON CONFLICT DO NOTHING",
                [[brand_id, ext, t, now()] for t in known],
            )
        added = len(known)
    return added, len(drop)


def sync_corp_tags(ctx: Context, brand_id: str, client: WeComClient) -> tuple[int, int]:
    """Fetch the corp tag list and write it (kept, removed)."""
    groups = client.get_corp_tags()
    with ctx.warehouse.write_lock, ctx.warehouse.transaction() as cur:
        return write_corp_tags(cur, brand_id, groups)


def union_tags(pairs: Iterable[tuple[str, Iterable[str]]]) -> dict[str, set[str]]:
    """external_userid → the union of the tag ids every member put on them."""
    out: dict[str, set[str]] = {}
    for ext, tags in pairs:
        out.setdefault(ext, set()).update(tags)
    return out


# -- siyu → WeCom ------------------------------------------------------------------------------------------------
MAX_NAME = 30
MAX_TAGS = 3000
MAX_ORDER = 2**32 - 1


def _editor(user: User) -> None:
    if user.role == Role.GUIDE:
        raise Forbidden("guides may put tags on their customers but not change the corp tag list", "role")


def check_name(name: str, field: str = "name") -> str:
    """A tag or group name as WeCom accepts it: 1..30 characters after trimming."""
    name = (name or "").strip()
    if not name:
        raise SiyuError(f"{field} is empty; give the tag a name", field)
    if len(name) > MAX_NAME:
        raise SiyuError(f"{field} has {len(name)} characters; WeCom allows at most {MAX_NAME}", field)
    return name


def check_order(order: int | None) -> int | None:
    if order is not None and not 0 <= order <= MAX_ORDER:
        raise SiyuError(f"order must be 0..{MAX_ORDER} (the larger shows first)", "order")
    return order


def corp_tags(client: WeComClient) -> list[dict[str, Any]]:
    """The corp tag list as WeCom orders it: groups with their tags (id, name, order)."""
    return [
        {
            "group_id": g.group_id,
            "group_name": g.name,
            "order": g.order,
            "tags": [{"id": t.id, "name": t.name, "order": t.order} for t in g.tags],
        }
        for g in client.get_corp_tags()
    ]


def create_tag(
    ctx: Context,
    user: User,
    client: WeComClient,
    name: str,
    group_name: str = "",
    group_id: str = "",
    order: int | None = None,
) -> dict[str, object]:
    """A new corp tag in a group (by id, or by name: created when missing); refused beyond 3,000 tags."""
    _editor(user)
    name = check_name(name)
    check_order(order)
    if not group_id:
        group_name = check_name(group_name, "group_name")
    groups = client.get_corp_tags()
    total = sum(len(g.tags) for g in groups)
    if total >= MAX_TAGS:
        raise SiyuError(f"the company already has {total} corp tags; WeCom allows {MAX_TAGS}: delete some", "name")
    target = next((g for g in groups if (g.group_id == group_id if group_id else g.name == group_name)), None)
    if group_id and target is None:
        raise NotFound(f"tag group {group_id!r} not found in WeCom", "group_id")
    if target is not None and any(t.name == name for t in target.tags):
        raise SiyuError(f"group {target.name!r} already has a tag named {name!r}", "name")
    made = client.add_corp_tags([name], group_name=group_name, group_id=group_id)
    tag = made.tags[0]
    if order is not None:
        client.edit_corp_tag(tag.id, order=order)
    sync_corp_tags(ctx, user.brand_id, client)
    return {"id": tag.id, "name": tag.name, "group_id": made.group_id, "group_name": made.name}


def edit_tag(
    ctx: Context, user: User, client: WeComClient, tag_or_group_id: str, name: str = "", order: int | None = None
) -> None:
    """Rename and/or re-order a tag or a tag group in WeCom, then sync the list back."""
    _editor(user)
    if not name and order is None:
        raise SiyuError("give a new name or order", "name")
    client.edit_corp_tag(tag_or_group_id, check_name(name) if name else "", check_order(order))
    sync_corp_tags(ctx, user.brand_id, client)


def delete_tags(
    ctx: Context,
    user: User,
    client: WeComClient,
    tag_ids: Sequence[str] = (),
    group_ids: Sequence[str] = (),
) -> None:
    """Delete tags and/or whole groups in WeCom; the sync removes them (and their assignments) here."""
    _editor(user)
    if not tag_ids and not group_ids:
        raise SiyuError("name at least one tag_id or group_id to delete", "tag_ids")
    client.del_corp_tags(tag_ids, group_ids)
    sync_corp_tags(ctx, user.brand_id, client)


def mark_customer(
    ctx: Context, user: User, client: WeComClient, external_userid: str, add: list[str], remove: list[str]
) -> int:
    """Put / take tags on a customer for every guide following them (a guide: only on their own relation).
    Returns the relations marked; the customer's ``wecom`` tags here follow."""
    if not add and not remove:
        raise SiyuError("give tags to add or remove", "add")
    sql = (
        "SELECT g.wecom_userid FROM relations r JOIN guides g USING (brand_id, guide_id) WHERE r.brand_id = ? "
        "AND r.external_userid = ? AND r.state = 'active' AND coalesce(g.wecom_userid, '') <> ''"
    )
    params: list[object] = [user.brand_id, external_userid]
    if user.role == Role.GUIDE:
        sql += " AND r.guide_id = ?"
        params.append(user.guide_id)
    members = [str(r[0]) for r in ctx.warehouse.fetch(sql, params)]
    if not members:
        raise NotFound(f"no active relation with customer {external_userid!r} (in your scope)", "external_userid")
    for m in members:
        client.mark_tag(m, external_userid, add, remove)
    with ctx.warehouse.write_lock, ctx.warehouse.transaction() as cur:
        have = {
            r[0]
            for r in cur.execute(
                "SELECT tag_id FROM identifier_tags WHERE brand_id = ? AND id_type = 'external_userid' "
                "AND id_value = ? AND source = 'wecom'",
                [user.brand_id, external_userid],
            ).fetchall()
        }
        set_customer_tags(cur, user.brand_id, external_userid, (have | set(add)) - set(remove))
    return len(members)
