"""What people do in WeCom, simulated: each changes the company and emits the callback WeCom would send.

Actions made through the API produce no callback (as in WeCom); these are the ones made in the apps.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

import httpx

from tests.wecom_server.state import Contact, Relation, external_userid

if TYPE_CHECKING:
    from tests.wecom_server.server import WeComServer


def _contact_event(srv: WeComServer, change: str, userid: str, ext: str, **extra: Any) -> dict[str, Any]:
    return {
        "ToUserName": srv.company.corpid,
        "FromUserName": "sys",
        "CreateTime": int(srv.now()),
        "MsgType": "event",
        "Event": "change_external_contact",
        "ChangeType": change,
        "UserID": userid,
        "ExternalUserID": ext,
        **extra,
    }


def emit(srv: WeComServer, fields: dict[str, Any]) -> httpx.Response | None:
    """Send ``fields`` to the connected callback URL (None when no callback is configured)."""
    if srv.callback is None:
        return None
    srv.sent.append(fields)
    return srv.callback.send(fields, str(fields.get("CreateTime") or int(srv.now())))


def new_contact(srv: WeComServer, name: str = "", unionid: str | None = None) -> Contact:
    """A WeChat user the company has never seen."""
    with srv.lock:
        n = len(srv.company.contacts)
        eid = external_userid(10**9 + n)
        c = Contact(eid, name or f"扫码客户{n}", unionid=f"oScan{n:023d}" if unionid is None else unionid)
        srv.company.contacts[eid] = c
    return c


def scan(
    srv: WeComServer, config_id: str, contact: Contact | None = None, welcome: bool = True
) -> tuple[str, str, str | None, httpx.Response | None]:
    """A customer scans a 联系我 code: a relation with add_way 1 and the code's state, a welcome code, and the
    ``add_external_contact`` callback.  Returns (userid, external_userid, welcome_code, callback response)."""
    with srv.lock:
        way = srv.company.contact_ways[config_id]
        users = way["user"]
        userid = users[way["rr"] % len(users)]
        way["rr"] += 1
        c = contact or new_contact(srv)
        srv.company.relations[(userid, c.external_userid)] = Relation(
            userid, c.external_userid, int(srv.now()), add_way=1, state=way["state"]
        )
        code = secrets.token_urlsafe(24) if welcome else None
        if code:
            srv.company.welcome_codes[code] = {
                "at": srv.now(),
                "used": False,
                "userid": userid,
                "ext": c.external_userid,
            }
        fields = _contact_event(
            srv, "add_external_contact", userid, c.external_userid, State=way["state"] or None, WelcomeCode=code
        )
    return userid, c.external_userid, code, emit(srv, fields)


def customer_deletes(srv: WeComServer, userid: str, ext: str) -> httpx.Response | None:
    """The customer deletes the member (删粉): ``del_follow_user``."""
    with srv.lock:
        srv.company.relations.pop((userid, ext), None)
        fields = _contact_event(srv, "del_follow_user", userid, ext)
    return emit(srv, fields)


def member_deletes(srv: WeComServer, userid: str, ext: str, source: str | None = None) -> httpx.Response | None:
    """The member deletes the customer: ``del_external_contact`` (``Source=DELETE_BY_TRANSFER`` on transfers)."""
    with srv.lock:
        srv.company.relations.pop((userid, ext), None)
        fields = _contact_event(srv, "del_external_contact", userid, ext, Source=source)
    return emit(srv, fields)


def edit_contact(srv: WeComServer, userid: str, ext: str, remark: str) -> httpx.Response | None:
    with srv.lock:
        srv.company.relations[(userid, ext)].remark = remark
        fields = _contact_event(srv, "edit_external_contact", userid, ext)
    return emit(srv, fields)


def transfer_fails(srv: WeComServer, userid: str, ext: str, reason: str = "customer_refused") -> httpx.Response | None:
    with srv.lock:
        for t in srv.company.transfers:
            if t.external_userid == ext and t.status == 2:
                t.status = 3 if reason == "customer_refused" else 4
        fields = _contact_event(srv, "transfer_fail", userid, ext, FailReason=reason)
    return emit(srv, fields)


def chat_event(srv: WeComServer, chat_id: str, change: str, **extra: Any) -> httpx.Response | None:
    """``change_external_chat`` (create | update | dismiss; update carries UpdateDetail etc.)."""
    fields = {
        "ToUserName": srv.company.corpid,
        "FromUserName": "sys",
        "CreateTime": int(srv.now()),
        "MsgType": "event",
        "Event": "change_external_chat",
        "ChatId": chat_id,
        "ChangeType": change,
        **extra,
    }
    return emit(srv, fields)


def tag_event(srv: WeComServer, tag_id: str, change: str, tag_type: str = "tag") -> httpx.Response | None:
    """``change_external_tag`` (create | update | delete | shuffle)."""
    fields = {
        "ToUserName": srv.company.corpid,
        "FromUserName": "sys",
        "CreateTime": int(srv.now()),
        "MsgType": "event",
        "Event": "change_external_tag",
        "Id": tag_id,
        "TagType": tag_type,
        "ChangeType": change,
    }
    return emit(srv, fields)


def add_group(srv: WeComServer, owner: str, members: list[str], name: str = "") -> str:
    """A customer group owned by ``owner`` with external ``members`` (no callback: see chat_event)."""
    with srv.lock:
        cid = srv.company.next_id("wrLocal")
        now = int(srv.now())
        srv.company.groups[cid] = {
            "chat_id": cid,
            "name": name or f"群{cid[-4:]}",
            "owner": owner,
            "create_time": now,
            "notice": "",
            "member_list": [{"userid": owner, "type": 1, "join_time": now, "join_scene": 1}]
            + [
                {
                    "userid": e,
                    "type": 2,
                    "unionid": srv.company.contacts[e].unionid,
                    "join_time": now,
                    "join_scene": 3,
                    "invitor": {"userid": owner},
                }
                for e in members
            ],
            "admin_list": [],
            "member_version": "1",
            "status": 0,
        }
    return cid


def set_group_admins(srv: WeComServer, chat_id: str, userids: list[str]) -> None:
    """The owner makes members the group's admins (群管理员, ≤ 3 in WeCom's client): ``admin_list`` of
    ``groupchat/get``; an admin not yet in the group joins it as a member."""
    with srv.lock:
        g = srv.company.groups[chat_id]
        inside = {m["userid"] for m in g["member_list"]}
        now = int(srv.now())
        for u in userids:
            if u not in inside:
                g["member_list"].append({"userid": u, "type": 1, "join_time": now, "join_scene": 1})
        g["admin_list"] = [{"userid": u} for u in userids]


def join_group(srv: WeComServer, chat_id: str, ext: str, scene: int = 3) -> httpx.Response | None:
    """A customer joins a customer group (scene 1 invited, 2 by link, 3 by the group QR): the member is listed by
    ``groupchat/get`` and WeCom sends ``change_external_chat`` update / add_member (which does not name them)."""
    with srv.lock:
        g = srv.company.groups[chat_id]
        g["member_list"].append(
            {
                "userid": ext,
                "type": 2,
                "unionid": srv.company.contacts[ext].unionid,
                "join_time": int(srv.now()),
                "join_scene": scene,
                "invitor": {"userid": g["owner"]},
            }
        )
        g["member_version"] = str(int(g["member_version"]) + 1)
    return chat_event(srv, chat_id, "update", UpdateDetail="add_member", JoinScene=scene, MemChangeCnt=1)


def confirm_mass_send(srv: WeComServer, msgid: str) -> dict[str, int]:
    """The member taps 发送 on a 群发 task in the app (no callback: WeCom sends none). Each target gets 1 sent,
    2 not (or no longer) a contact, or 3 already received a company mass message on this server day (UTC+8)."""
    with srv.lock:
        t = srv.company.templates[msgid]
        if t.get("confirmed_at"):
            return dict(t["results"])
        now = srv.now()
        day = int((now + 8 * 3600) // 86400)
        got_today = {
            e
            for o in srv.company.templates.values()
            if o.get("confirmed_at")
            and o["chat_type"] == "single"
            and int((o["confirmed_at"] + 8 * 3600) // 86400) == day
            for e, st in o["results"].items()
            if st == 1
        }
        results: dict[str, int] = {}
        for target in t["targets"]:
            if t["chat_type"] == "group":
                results[target] = 1 if target in srv.company.groups else 2
            elif (t["sender"], target) not in srv.company.relations:
                results[target] = 2
            else:
                results[target] = 3 if target in got_today else 1
        t["results"], t["confirmed_at"] = results, now
        return dict(results)


def publish_moment(srv: WeComServer, moment_id: str, userid: str) -> bool:
    """A member posts a company Moments task in the app (no callback: WeCom sends none); False when the member
    is not one of the task's senders."""
    with srv.lock:
        m = srv.company.moments[moment_id]
        if userid not in m["senders"]:
            return False
        m["published"].setdefault(userid, int(srv.now()))
        return True
