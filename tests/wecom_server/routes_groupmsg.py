"""群发 results: get_groupmsg_task and get_groupmsg_send_result, as WeCom documents them (客户联系 → 消息推送).

A task made by ``add_msg_template`` waits for its member to confirm in the app (``actions.confirm_mass_send``);
until then the task's status is 0 (未发送) and every target 0. On confirmation each target gets 1 (已发送),
2 (the customer is no longer the member's contact) or 3 (the customer already received a company mass message
today: WeCom's one-a-day rule).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.wecom_server.codes import need
from tests.wecom_server.params import integer, page, text

if TYPE_CHECKING:
    from tests.wecom_server.server import WeComServer


def _template(srv: WeComServer, q: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    msgid = text(q, "msgid", 64, required=True)
    t = srv.company.templates.get(msgid)
    need(t is not None, 40058, f"msgid {msgid} unknown")
    assert t is not None
    return msgid, t


def get_groupmsg_task(srv: WeComServer, q: dict[str, Any]) -> dict[str, Any]:
    """One row per member of the task: status 0 未发送 / 2 已发送, send_time."""
    _, t = _template(srv, q)
    limit = integer(q, "limit", 500, 1, 1000)
    rows = [{"userid": t["sender"], "status": 2 if t.get("confirmed_at") else 0}]
    if t.get("confirmed_at"):
        rows[0]["send_time"] = int(t["confirmed_at"])
    chunk, nxt = page(rows, q, limit)
    return {"task_list": chunk, "next_cursor": nxt}


def get_groupmsg_send_result(srv: WeComServer, q: dict[str, Any]) -> dict[str, Any]:
    """Per target of one member: status 0 未发送, 1 已发送, 2 not a contact, 3 already got a mass message today."""
    _, t = _template(srv, q)
    userid = text(q, "userid", 64, required=True)
    need(userid == t["sender"], 40003, userid)
    limit = integer(q, "limit", 500, 1, 1000)
    key = "chat_id" if t["chat_type"] == "group" else "external_userid"
    results: dict[str, int] = t.get("results") or {}
    rows: list[dict[str, Any]] = []
    for target in t["targets"]:
        row: dict[str, Any] = {key: target, "userid": userid, "status": results.get(target, 0)}
        if results.get(target) == 1:
            row["send_time"] = int(t["confirmed_at"])
        rows.append(row)
    chunk, nxt = page(rows, q, limit)
    return {"send_list": chunk, "next_cursor": nxt}
