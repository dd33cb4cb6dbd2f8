"""联系我 (contact ways) and group join ways: add/get/update/del/list_contact_way, groupchat/add_join_way."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.wecom_server.codes import need
from tests.wecom_server.params import integer, items, page, text

if TYPE_CHECKING:
    from tests.wecom_server.server import WeComServer

MAX_WAYS = 500_000


def _way_fields(srv: WeComServer, q: dict[str, Any], way: dict[str, Any]) -> None:
    if "remark" in q:
        way["remark"] = text(q, "remark", 30)
    if "state" in q:
        way["state"] = text(q, "state", 30)
    if "skip_verify" in q:
        way["skip_verify"] = bool(q["skip_verify"])
    if "user" in q:
        users = items(q, "user", 100)
        for u in users:
            need(u in srv.company.members, 40003, str(u))
        way["user"] = users
    if "party" in q:
        way["party"] = items(q, "party", 100)
    if "expires_in" in q:
        way["expires_in"] = integer(q, "expires_in", 7 * 86400, 1, 14 * 86400)


def add_contact_way(srv: WeComServer, q: dict[str, Any]) -> dict[str, Any]:
    wtype = integer(q, "type", 0, 1, 2)
    scene = integer(q, "scene", 0, 1, 2)
    need(wtype in (1, 2) and scene in (1, 2), 40058, "type and scene are required")
    need(len(srv.company.contact_ways) < MAX_WAYS, 40058, "contact way count exceeds 500000")
    way: dict[str, Any] = {
        "type": wtype,
        "scene": scene,
        "style": q.get("style", 1),
        "remark": "",
        "state": "",
        "skip_verify": True,
        "user": [],
        "party": [],
        "is_temp": bool(q.get("is_temp")),
    }
    _way_fields(srv, q, way)
    need(bool(way["user"] or way["party"]), 40058, "user or party required")
    need(wtype == 2 or len(way["user"]) + len(way["party"]) == 1, 40058, "type 1 takes exactly one member")
    cid = srv.company.next_id("cw")
    way["config_id"] = cid
    way["create_time"] = int(srv.now())
    way["rr"] = 0  # next member for round-robin scans
    if scene == 2:
        way["qr_code"] = f"http://p.qpic.cn/wwpic/local/{cid}/0"
    srv.company.contact_ways[cid] = way
    return {"config_id": cid, **({"qr_code": way["qr_code"]} if scene == 2 else {})}


def _way(srv: WeComServer, q: dict[str, Any]) -> dict[str, Any]:
    cid = text(q, "config_id", 64, required=True)
    way = srv.company.contact_ways.get(cid)
    need(way is not None, 40058, "invalid config_id")
    assert way is not None
    return way


def get_contact_way(srv: WeComServer, q: dict[str, Any]) -> dict[str, Any]:
    way = _way(srv, q)
    return {"contact_way": {k: v for k, v in way.items() if k != "rr"}}


def update_contact_way(srv: WeComServer, q: dict[str, Any]) -> dict[str, Any]:
    way = _way(srv, q)
    new = dict(way)
    _way_fields(srv, q, new)
    need(way["type"] == 2 or len(new["user"]) + len(new["party"]) == 1, 40058, "type 1 takes exactly one member")
    way.update(new)
    return {}


def del_contact_way(srv: WeComServer, q: dict[str, Any]) -> dict[str, Any]:
    way = _way(srv, q)
    del srv.company.contact_ways[way["config_id"]]
    return {}


def list_contact_way(srv: WeComServer, q: dict[str, Any]) -> dict[str, Any]:
    limit = integer(q, "limit", 100, 1, 1000)
    start = integer(q, "start_time", 0, 0, 2**31)
    end = integer(q, "end_time", 2**31, 0, 2**31)
    ways = [w for w in srv.company.contact_ways.values() if start <= w["create_time"] <= end]
    rows, nxt = page(ways, q, limit)
    return {"contact_way": [{"config_id": w["config_id"]} for w in rows], "next_cursor": nxt}


def add_join_way(srv: WeComServer, q: dict[str, Any]) -> dict[str, Any]:
    scene = integer(q, "scene", 0, 1, 2)
    need(scene in (1, 2), 40058, "scene is required")
    chats = items(q, "chat_id_list", 5, required=True)
    for c in chats:
        need(c in srv.company.groups, 40050, str(c))
    way = {
        "scene": scene,
        "remark": text(q, "remark", 30),
        "auto_create_room": int(q.get("auto_create_room", 1)),
        "room_base_name": text(q, "room_base_name", 40),
        "room_base_id": integer(q, "room_base_id", 0, 0, 2**31),
        "chat_id_list": chats,
        "state": text(q, "state", 30),
    }
    cid = srv.company.next_id("jw")
    srv.company.join_ways[cid] = {**way, "config_id": cid, "qr_code": f"http://p.qpic.cn/wwpic/local/{cid}/0"}
    return {"config_id": cid}
