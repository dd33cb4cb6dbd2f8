"""Contact endpoints: get_follow_user_list, list, get, batch/get_by_user, mark_tag."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.wecom_server.codes import need
from tests.wecom_server.params import items, page, text

if TYPE_CHECKING:
    from tests.wecom_server.server import WeComServer
    from tests.wecom_server.state import Relation

FOLLOW_PAGE = 500  # `get` pages follow_user past 500 followers


def follow_user_list(srv: WeComServer, q: dict[str, Any]) -> dict[str, Any]:
    return {"follow_user": sorted(srv.company.members)}


def user_list(srv: WeComServer, q: dict[str, Any]) -> dict[str, Any]:
    uid = text(q, "userid", 64, required=True)
    need(uid in srv.company.members, 60111)
    return {"external_userid": [r.external_userid for r in srv.company.customers_of(uid)]}


def _tags(srv: WeComServer, r: Relation) -> list[dict[str, Any]]:
    out = []
    for tid in r.tag_ids:
        tag = srv.company.tags.get(tid)
        if tag:
            group = srv.company.tag_groups[tag["group_id"]]
            out.append({"group_name": group["name"], "tag_name": tag["name"], "type": 1, "tag_id": tid})
    return out


def follow(srv: WeComServer, r: Relation, tag_names: bool) -> dict[str, Any]:
    d: dict[str, Any] = {
        "userid": r.userid,
        "remark": r.remark,
        "description": r.description,
        "createtime": r.createtime,
        "remark_mobiles": [],
        "add_way": r.add_way,
    }
    if tag_names:
        d["tags"] = _tags(srv, r)
    else:
        d["tag_id"] = list(r.tag_ids)
    if r.oper_userid or r.add_way in (201, 202):
        d["oper_userid"] = r.oper_userid or r.userid
    if r.state:
        d["state"] = r.state
    return d


def get(srv: WeComServer, q: dict[str, Any]) -> dict[str, Any]:
    eid = text(q, "external_userid", 64, required=True)
    contact = srv.company.contacts.get(eid)
    need(contact is not None, 40096)
    assert contact is not None
    rows, nxt = page(srv.company.followers(eid), q, FOLLOW_PAGE)
    out: dict[str, Any] = {"external_contact": contact.api(), "follow_user": [follow(srv, r, True) for r in rows]}
    if nxt:
        out["next_cursor"] = nxt
    return out


def batch_get_by_user(srv: WeComServer, q: dict[str, Any]) -> dict[str, Any]:
    users = items(q, "userid_list", 100, required=True)
    for u in users:
        need(u in srv.company.members, 60111, str(u))
    limit = q.get("limit") or 50
    need(isinstance(limit, int) and 1 <= limit <= 100, 40058, "limit must be 1..100")
    rels = [r for u in users for r in srv.company.customers_of(u)]
    rows, nxt = page(rels, q, int(limit))
    return {
        "external_contact_list": [
            {"external_contact": srv.company.contacts[r.external_userid].api(), "follow_info": follow(srv, r, False)}
            for r in rows
        ],
        "next_cursor": nxt,
    }


def mark_tag(srv: WeComServer, q: dict[str, Any]) -> dict[str, Any]:
    uid = text(q, "userid", 64, required=True)
    eid = text(q, "external_userid", 64, required=True)
    add, remove = items(q, "add_tag", 3000), items(q, "remove_tag", 3000)
    need(bool(add or remove), 40058, "add_tag and remove_tag both empty")
    need(uid in srv.company.members, 60111)
    need(eid in srv.company.contacts, 40096)
    rel = srv.company.relations.get((uid, eid))
    need(rel is not None, 84061)
    for t in add + remove:
        need(t in srv.company.tags, 40068, str(t))
    assert rel is not None
    rel.tag_ids = [t for t in rel.tag_ids if t not in remove] + [t for t in add if t not in rel.tag_ids]
    return {}
