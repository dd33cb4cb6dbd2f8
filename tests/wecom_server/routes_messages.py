"""Messages: send_welcome_msg (20 s window, once) and add_msg_template (群发)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.wecom_server.codes import need
from tests.wecom_server.params import items, text

if TYPE_CHECKING:
    from tests.wecom_server.server import WeComServer


def _content(q: dict[str, Any]) -> tuple[str, list[Any]]:
    t = q.get("text") or {}
    need(isinstance(t, dict), 40058, "text must be an object")
    content = t.get("content") or ""
    need(isinstance(content, str), 40058, "text.content must be a string")
    need(len(content.encode()) <= 4000, 45002, "text.content exceeds 4000 bytes")
    attachments = items(q, "attachments", 9)
    for a in attachments:
        need(
            isinstance(a, dict) and a.get("msgtype") in {"image", "link", "miniprogram", "video", "file"},
            40058,
            "attachments[].msgtype",
        )
    need(bool(content or attachments), 44004)
    return content, attachments


def send_welcome_msg(srv: WeComServer, q: dict[str, Any]) -> dict[str, Any]:
    code = text(q, "welcome_code", 128, required=True)
    content, attachments = _content(q)
    w = srv.company.welcome_codes.get(code)
    need(w is not None, 41050)
    assert w is not None
    need(not w["used"], 41051)
    need(srv.now() - w["at"] <= srv.welcome_window, 41050, "welcome_code expired")
    w["used"] = True
    srv.company.welcome_sent.append(
        {
            "welcome_code": code,
            "userid": w["userid"],
            "external_userid": w["ext"],
            "content": content,
            "attachments": attachments,
            "at": srv.now(),
        }
    )
    return {}


def add_msg_template(srv: WeComServer, q: dict[str, Any]) -> dict[str, Any]:
    chat_type = q.get("chat_type") or "single"
    need(chat_type in ("single", "group"), 40058, "chat_type must be single or group")
    content, attachments = _content(q)
    sender = text(q, "sender", 64)
    need(not sender or sender in srv.company.members, 40003, sender)
    fail: list[str] = []
    if chat_type == "single":
        ids = items(q, "external_userid", 10_000)
        need(bool(ids or sender), 40058, "external_userid or sender required")
        for e in ids:
            ok = (sender and (sender, e) in srv.company.relations) or (
                not sender and any(k[1] == e for k in srv.company.relations)
            )
            if not ok:
                fail.append(e)
    else:
        ids = items(q, "chat_id_list", 2000)
        need(bool(sender), 40058, "sender required for group")
        fail = [c for c in ids if c not in srv.company.groups]
    msgid = srv.company.next_id("msg")
    srv.company.templates[msgid] = {
        "chat_type": chat_type,
        "sender": sender,
        "targets": [i for i in ids if i not in fail],
        "content": content,
        "attachments": attachments,
        "create_time": int(srv.now()),
    }
    return {"msgid": msgid, "fail_list": fail}
