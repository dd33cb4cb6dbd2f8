"""Customer groups: groupchat/list (owner filter ≤ 100, limit 1–1000) and groupchat/get."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.wecom_server.codes import need
from tests.wecom_server.params import integer, items, page, text

if TYPE_CHECKING:
    from tests.wecom_server.server import WeComServer


def groupchat_list(srv: WeComServer, q: dict[str, Any]) -> dict[str, Any]:
    status = integer(q, "status_filter", 0, 0, 3)
    need(q.get("limit") is not None, 40058, "limit is required")
    limit = integer(q, "limit", 0, 1, 1000)
    owners = items(q.get("owner_filter") or {}, "userid_list", 100)
    chats = [
        g for g in srv.company.groups.values() if (not owners or g["owner"] in owners) and g.get("status", 0) == status
    ]
    rows, nxt = page(sorted(chats, key=lambda g: g["chat_id"]), q, limit)
    return {
        "group_chat_list": [{"chat_id": g["chat_id"], "status": g.get("status", 0)} for g in rows],
        "next_cursor": nxt,
    }


def groupchat_get(srv: WeComServer, q: dict[str, Any]) -> dict[str, Any]:
    cid = text(q, "chat_id", 64, required=True)
    g = srv.company.groups.get(cid)
    need(g is not None, 40050)
    assert g is not None
    chat = {k: v for k, v in g.items() if k != "status"}
    if not q.get("need_name"):
        chat["member_list"] = [{k: v for k, v in m.items() if k != "name"} for m in g["member_list"]]
    return {"group_chat": chat}
