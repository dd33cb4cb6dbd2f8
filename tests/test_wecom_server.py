"""The local WeCom server answers as wecom.md documents: errcode on every answer, tokens, limits, paging."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.wecom_server import WeComServer, actions, running, seed

CORP, SECRET = "wwlocal0000000001", "contact-secret"


@pytest.fixture
def srv() -> Iterator[tuple[WeComServer, str]]:
    s = WeComServer(token_ttl=3600)
    seed(s.company, guides=3, contacts_per_guide=120)
    with running(s) as base:
        yield s, base


def token(base: str) -> str:
    r = httpx.get(f"{base}/cgi-bin/gettoken", params={"corpid": CORP, "corpsecret": SECRET}).json()
    assert r["errcode"] == 0 and r["errmsg"] == "ok" and r["expires_in"] == 3600 and len(r["access_token"]) <= 512
    return str(r["access_token"])


def call(base: str, tok: str, api: str, body: dict[str, Any] | None = None, **q: Any) -> dict[str, Any]:
    url = f"{base}/cgi-bin/externalcontact/{api}"
    r = (
        httpx.post(url, params={"access_token": tok}, json=body)
        if body is not None
        else httpx.get(url, params={"access_token": tok, **q})
    )
    assert r.status_code == 200
    out: dict[str, Any] = r.json()
    assert "errcode" in out and "errmsg" in out
    return out


def test_gettoken_errors(srv: tuple[WeComServer, str]) -> None:
    _, base = srv
    bad = httpx.get(f"{base}/cgi-bin/gettoken", params={"corpid": CORP, "corpsecret": "nope"}).json()
    assert bad["errcode"] == 40001 and "devtool/query?e=40001" in bad["errmsg"]
    assert (
        httpx.get(f"{base}/cgi-bin/gettoken", params={"corpid": "x", "corpsecret": SECRET}).json()["errcode"] == 40013
    )


def test_token_expiry_and_unknown(srv: tuple[WeComServer, str]) -> None:
    s, base = srv
    tok = token(base)
    assert call(base, tok, "get_follow_user_list")["follow_user"] == ["guide0001", "guide0002", "guide0003"]
    assert call(base, "forged", "get_follow_user_list")["errcode"] == 40014
    assert call(base, "", "get_follow_user_list")["errcode"] == 41001
    s.advance(3601)
    assert call(base, tok, "get_follow_user_list")["errcode"] == 42001


def test_busy_injection_and_rate_limit(srv: tuple[WeComServer, str]) -> None:
    s, base = srv
    tok = token(base)
    s.inject("list", -1)
    assert call(base, tok, "list", userid="guide0001")["errcode"] == -1
    assert len(call(base, tok, "list", userid="guide0001")["external_userid"]) == 120
    s.rate_limit = 3
    codes = [call(base, tok, "get_follow_user_list")["errcode"] for _ in range(5)]
    assert codes == [0, 0, 0, 45009, 45009]
    assert call(base, tok, "list", userid="guide0001")["errcode"] == 0  # per API


def test_batch_paging_and_limits(srv: tuple[WeComServer, str]) -> None:
    _, base = srv
    tok = token(base)
    users = ["guide0001", "guide0002", "guide0003"]
    seen: list[tuple[str, str]] = []
    cursor = ""
    pages = 0
    while True:
        r = call(base, tok, "batch/get_by_user", {"userid_list": users, "cursor": cursor, "limit": 100})
        assert r["errcode"] == 0 and len(r["external_contact_list"]) <= 100
        for row in r["external_contact_list"]:
            assert row["external_contact"]["external_userid"].startswith("wm")
            assert set(row["follow_info"]) >= {"userid", "createtime", "tag_id", "add_way", "state"}
            seen.append((row["follow_info"]["userid"], row["external_contact"]["external_userid"]))
        pages += 1
        cursor = r["next_cursor"]
        if not cursor:
            break
    assert pages == 4 and len(seen) == len(set(seen)) == 360
    default = call(base, tok, "batch/get_by_user", {"userid_list": users})
    assert len(default["external_contact_list"]) == 50
    assert call(base, tok, "batch/get_by_user", {"userid_list": users, "limit": 101})["errcode"] == 40058
    assert call(base, tok, "batch/get_by_user", {"userid_list": [f"u{i}" for i in range(101)]})["errcode"] == 40058
    assert call(base, tok, "batch/get_by_user", {"userid_list": ["ghost"]})["errcode"] == 60111


def test_get_contact(srv: tuple[WeComServer, str]) -> None:
    _, base = srv
    tok = token(base)
    eid = call(base, tok, "list", userid="guide0002")["external_userid"][0]
    r = call(base, tok, "get", external_userid=eid)
    assert r["external_contact"]["unionid"].startswith("oUnion")
    assert r["follow_user"][0]["userid"] == "guide0002" and "tags" in r["follow_user"][0]
    assert call(base, tok, "get", external_userid="wmNobody")["errcode"] == 40096


def test_contact_way_state_limit_and_scan_welcome(srv: tuple[WeComServer, str]) -> None:
    s, base = srv
    tok = token(base)
    long_state = {"type": 1, "scene": 2, "user": ["guide0001"], "state": "x" * 31}
    assert call(base, tok, "add_contact_way", long_state)["errcode"] == 40058
    r = call(base, tok, "add_contact_way", {"type": 2, "scene": 2, "user": ["guide0001", "guide0002"], "state": "c1"})
    assert r["errcode"] == 0 and r["qr_code"].startswith("http")
    way = call(base, tok, "get_contact_way", {"config_id": r["config_id"]})["contact_way"]
    assert way["state"] == "c1" and way["user"] == ["guide0001", "guide0002"]
    u1, e1, code1, _ = actions.scan(s, r["config_id"])
    u2, _, code2, _ = actions.scan(s, r["config_id"])
    assert (u1, u2) == ("guide0001", "guide0002")  # round robin over the code's members
    got = call(base, tok, "get", external_userid=e1)["follow_user"][0]
    assert got["state"] == "c1" and got["add_way"] == 1
    msg = {"welcome_code": code1, "text": {"content": "欢迎"}}
    assert call(base, tok, "send_welcome_msg", msg)["errcode"] == 0
    assert call(base, tok, "send_welcome_msg", msg)["errcode"] == 41051
    s.advance(21)
    assert call(base, tok, "send_welcome_msg", {"welcome_code": code2, "text": {"content": "hi"}})["errcode"] == 41050
    att = {"welcome_code": code2, "attachments": [{"msgtype": "image"}] * 10}
    assert call(base, tok, "send_welcome_msg", att)["errcode"] == 40058


def test_tags_and_mark(srv: tuple[WeComServer, str]) -> None:
    _, base = srv
    tok = token(base)
    g = call(base, tok, "add_corp_tag", {"group_name": "渠道", "tag": [{"name": "门店"}, {"name": "直播"}]})
    ids = [t["id"] for t in g["tag_group"]["tag"]]
    assert len(ids) == 2
    assert call(base, tok, "add_corp_tag", {"group_name": "渠道", "tag": [{"name": "门店"}]})["errcode"] == 40071
    assert call(base, tok, "add_corp_tag", {"group_name": "长", "tag": [{"name": "x" * 31}]})["errcode"] == 40058
    eid = call(base, tok, "list", userid="guide0001")["external_userid"][0]
    assert call(base, tok, "mark_tag", {"userid": "guide0001", "external_userid": eid, "add_tag": ids})["errcode"] == 0
    assert {t["tag_id"] for t in call(base, tok, "get", external_userid=eid)["follow_user"][0]["tags"]} == set(ids)
    bad = {"userid": "guide0002", "external_userid": eid, "add_tag": ids}
    assert call(base, tok, "mark_tag", bad)["errcode"] == 84061
    assert call(base, tok, "del_corp_tag", {"tag_id": ids})["errcode"] == 0
    assert call(base, tok, "get_corp_tag_list", {})["tag_group"] == []


def test_transfer_rules(srv: tuple[WeComServer, str]) -> None:
    s, base = srv
    tok = token(base)
    eids = call(base, tok, "list", userid="guide0001")["external_userid"][:2]
    body = {"handover_userid": "guide0001", "takeover_userid": "guide0003", "external_userid": [*eids, "wmNobody"]}
    out = call(base, tok, "transfer_customer", body)["customer"]
    assert [c["errcode"] for c in out] == [0, 0, 40096]
    assert (
        call(base, tok, "transfer_customer", {**body, "external_userid": eids[:1]})["customer"][0]["errcode"] == 40129
    )
    res = {"handover_userid": "guide0001", "takeover_userid": "guide0003"}
    assert {c["status"] for c in call(base, tok, "transfer_result", res)["customer"]} == {2}
    s.advance(86400)
    assert call(base, tok, "transfer_result", res)["errcode"] == 42001
    tok = token(base)
    assert {c["status"] for c in call(base, tok, "transfer_result", res)["customer"]} == {1}
    assert eids[0] in call(base, tok, "list", userid="guide0003")["external_userid"]
    back = {"handover_userid": "guide0003", "takeover_userid": "guide0001", "external_userid": eids[:1]}
    assert call(base, tok, "transfer_customer", back)["customer"][0]["errcode"] == 0
    s.advance(86400)
    tok = token(base)
    again = {"handover_userid": "guide0001", "takeover_userid": "guide0002", "external_userid": eids[:1]}
    assert call(base, tok, "transfer_customer", again)["customer"][0]["errcode"] == 40128  # 2 per 90 days
    assert call(base, tok, "transfer_customer", {**body, "external_userid": ["w"] * 101})["errcode"] == 40058


def test_groups_and_join_way_and_templates(srv: tuple[WeComServer, str]) -> None:
    s, base = srv
    tok = token(base)
    eids = call(base, tok, "list", userid="guide0001")["external_userid"][:3]
    chats = [actions.add_group(s, "guide0001", eids) for _ in range(7)]
    r = call(base, tok, "groupchat/list", {"limit": 5, "owner_filter": {"userid_list": ["guide0001"]}})
    assert len(r["group_chat_list"]) == 5 and r["next_cursor"]
    r2 = call(base, tok, "groupchat/list", {"limit": 5, "cursor": r["next_cursor"]})
    assert len(r2["group_chat_list"]) == 2 and r2["next_cursor"] == ""
    assert call(base, tok, "groupchat/list", {"limit": 1001})["errcode"] == 40058
    g = call(base, tok, "groupchat/get", {"chat_id": chats[0], "need_name": 1})["group_chat"]
    assert g["owner"] == "guide0001" and sum(m["type"] == 2 for m in g["member_list"]) == 3
    assert call(base, tok, "groupchat/add_join_way", {"scene": 2, "chat_id_list": chats[:6]})["errcode"] == 40058
    assert call(base, tok, "groupchat/add_join_way", {"scene": 2, "chat_id_list": chats[:5], "state": "g"})["config_id"]
    t = call(
        base,
        tok,
        "add_msg_template",
        {"sender": "guide0001", "external_userid": [*eids, "wmX"], "text": {"content": "上新"}},
    )
    assert t["msgid"] and t["fail_list"] == ["wmX"]
    long = {"sender": "guide0001", "external_userid": eids, "text": {"content": "字" * 1334}}
    assert call(base, tok, "add_msg_template", long)["errcode"] == 45002  # 4002 bytes > 4000
