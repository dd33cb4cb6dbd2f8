"""Corp tags: get_corp_tag_list, add_corp_tag, edit_corp_tag, del_corp_tag (names ≤ 30 chars, ≤ 3,000 tags)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.wecom_server.codes import need
from tests.wecom_server.params import integer, items, text

if TYPE_CHECKING:
    from tests.wecom_server.server import WeComServer

MAX_TAGS = 3000


def _group_api(srv: WeComServer, gid: str, only: set[str] | None = None) -> dict[str, Any]:
    g = srv.company.tag_groups[gid]
    tags = [(tid, t) for tid, t in srv.company.tags.items() if t["group_id"] == gid and (only is None or tid in only)]
    return {
        "group_id": gid,
        "group_name": g["name"],
        "create_time": g["create_time"],
        "order": g["order"],
        "tag": [
            {"id": tid, "name": t["name"], "create_time": t["create_time"], "order": t["order"]}
            for tid, t in sorted(tags, key=lambda x: -x[1]["order"])
        ],
    }


def get_corp_tag_list(srv: WeComServer, q: dict[str, Any]) -> dict[str, Any]:
    tag_ids, group_ids = set(items(q, "tag_id", 3000)), items(q, "group_id", 3000)
    if tag_ids:
        gids = sorted({srv.company.tags[t]["group_id"] for t in tag_ids if t in srv.company.tags})
        return {"tag_group": [_group_api(srv, g, tag_ids) for g in gids]}
    gids = [g for g in group_ids if g in srv.company.tag_groups] if group_ids else list(srv.company.tag_groups)
    gids.sort(key=lambda g: -srv.company.tag_groups[g]["order"])
    return {"tag_group": [_group_api(srv, g) for g in gids]}


def add_corp_tag(srv: WeComServer, q: dict[str, Any]) -> dict[str, Any]:
    new = items(q, "tag", 3000, required=True)
    gid = text(q, "group_id", 64)
    now = int(srv.now())
    if gid:
        need(gid in srv.company.tag_groups, 40068, "invalid group_id")
    else:
        name = text(q, "group_name", 30, required=True)
        found = [g for g, v in srv.company.tag_groups.items() if v["name"] == name]
        gid = found[0] if found else ""
    need(len(srv.company.tags) + len(new) <= MAX_TAGS, 40058, f"corp tags exceed {MAX_TAGS}")
    existing = {t["name"] for t in srv.company.tags.values() if t["group_id"] == gid}
    for t in new:
        need(isinstance(t, dict), 40058, "tag entries are objects")
        text(t, "name", 30, required=True)
        need(t["name"] not in existing, 40071, f"tag {t['name']} exists in group")
    if not gid:
        gid = srv.company.next_id("et")
        srv.company.tag_groups[gid] = {
            "name": q["group_name"],
            "order": integer(q, "order", 0, 0, 2**32),
            "create_time": now,
        }
    ids = set()
    for t in new:
        tid = srv.company.next_id("et")
        srv.company.tags[tid] = {
            "group_id": gid,
            "name": t["name"],
            "order": int(t.get("order") or 0),
            "create_time": now,
        }
        ids.add(tid)
    return {"tag_group": _group_api(srv, gid, ids)}


def edit_corp_tag(srv: WeComServer, q: dict[str, Any]) -> dict[str, Any]:
    tid = text(q, "id", 64, required=True)
    name = text(q, "name", 30)
    if tid in srv.company.tag_groups:
        if name:
            srv.company.tag_groups[tid]["name"] = name
        if "order" in q:
            srv.company.tag_groups[tid]["order"] = integer(q, "order", 0, 0, 2**32)
        return {}
    need(tid in srv.company.tags, 40068)
    tag = srv.company.tags[tid]
    if name:
        clash = [
            t
            for k, t in srv.company.tags.items()
            if k != tid and t["group_id"] == tag["group_id"] and t["name"] == name
        ]
        need(not clash, 40071, f"tag {name} exists in group")
        tag["name"] = name
    if "order" in q:
        tag["order"] = integer(q, "order", 0, 0, 2**32)
    return {}


def del_corp_tag(srv: WeComServer, q: dict[str, Any]) -> dict[str, Any]:
    tag_ids, group_ids = items(q, "tag_id", 3000), items(q, "group_id", 3000)
    need(bool(tag_ids or group_ids), 40058, "tag_id and group_id both empty")
    for t in tag_ids:
        need(t in srv.company.tags, 40068, str(t))
    for g in group_ids:
        need(g in srv.company.tag_groups, 40068, str(g))
    gone = set(tag_ids) | {t for t, v in srv.company.tags.items() if v["group_id"] in group_ids}
    for t in gone:
        srv.company.tags.pop(t, None)
    for r in srv.company.relations.values():
        if any(t in gone for t in r.tag_ids):
            r.tag_ids = [t for t in r.tag_ids if t not in gone]
    for g in list(srv.company.tag_groups):  # a group without tags is deleted
        if g in group_ids or not any(v["group_id"] == g for v in srv.company.tags.values()):
            del srv.company.tag_groups[g]
    return {}
