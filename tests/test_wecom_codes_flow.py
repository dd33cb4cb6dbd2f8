"""Channel codes end to end through real HTTP: the API makes the code in the local WeCom server, the server emits a
simulated scan carrying the code's state to a live siyu app, and the add is attributed, welcomed, tagged and
invited; daily caps move the next adds to the other guide, then to the fallback."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from siyu.api.app import create_app
from siyu.domain.models import Role
from siyu.services import brands
from siyu.services.context import Context
from siyu.services.wecom.config import WeComConfig, set_config
from tests.support.live import live_server
from tests.wecom_server import WeComServer, actions, running, seed

TOKEN, KEY, CORP = "QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wwlocal0000000001"


@dataclass
class Env:
    ctx: Context
    srv: WeComServer
    base: str
    h: dict[str, str]
    chat_sh: str
    chat_all: str


def _login(base: str, user: str, pw: str) -> dict[str, str]:
    tok = httpx.post(f"{base}/api/auth/login", json={"username": user, "password": pw}).json()["token"]
    return {"Authorization": f"Bearer {tok}"}


@pytest.fixture
def env(ctx: Context) -> Iterator[Env]:
    brands.create_brand(ctx, "acme", "Acme")
    brands.create_user(ctx, "acme", "admin", "s3cret-pass", Role.ADMIN)
    brands.create_user(ctx, "acme", "wang", "s3cret-pass", Role.GUIDE, guide_id="g1")
    srv = WeComServer(corpid=CORP)
    seed(srv.company, guides=3, contacts_per_guide=2)
    chat_sh = actions.add_group(srv, "guide0001", [], name="上海跑团")
    chat_all = actions.add_group(srv, "guide0001", [], name="会员福利群")
    with ctx.warehouse.transaction() as cur:
        cur.execute(
            "INSERT INTO guides (brand_id, guide_id, name, wecom_userid) VALUES ('acme','g1','王导购','guide0001'), "
            "('acme','g2','李导购','guide0002'), ('acme','g3','值班导购','guide0003'), ('acme','g4','无企微','')"
        )
        cur.execute(
            "INSERT INTO channels (brand_id, channel_id, name, kind) VALUES ('acme','ch_store','门店','offline')"
        )
    with running(srv) as wecom, live_server(create_app(ctx, with_console=False)) as base:
        set_config(ctx, "acme", WeComConfig(CORP, TOKEN, KEY, secret="contact-secret", api_base=wecom))
        srv.connect_callbacks(f"{base}/api/wecom/callback/acme", TOKEN, KEY)
        yield Env(ctx, srv, base, _login(base, "admin", "s3cret-pass"), chat_sh, chat_all)


def wait_for(fn: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = fn()
        if out:
            return out
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def code_body(env: Env, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "门店收银台",
        "channel_id": "ch_store",
        "campaign": "spring2026",
        "guides": [{"guide_id": "g1", "cap": 1}, {"guide_id": "g2", "cap": 2}],
        "fallback_guide_id": "g3",
        "welcome": {
            "text": "{name}您好，我是{guide}，送您{coupon}",
            "attachments": [{"msgtype": "image", "image": {"pic_url": "https://example.com/a.png"}}],
            "coupon": {"id": "cp-10", "title": "10元无门槛券"},
        },
        "group_rules": [
            {"attribute": "city", "values": ["上海"], "chat_ids": [env.chat_sh], "name": "上海跑团"},
            {"chat_ids": [env.chat_all], "name": "会员福利群"},
        ],
    }
    return body | over


def adds(env: Env, code_id: int) -> list[dict[str, Any]]:
    r = httpx.get(f"{env.base}/api/wecom/codes/{code_id}/adds", headers=env.h)
    return list(r.json()["items"])


def done_add(env: Env, code_id: int, ext: str) -> dict[str, Any]:
    """The add's onboarding row once every step has finished."""
    return dict(
        wait_for(
            lambda: next(
                (
                    a
                    for a in adds(env, code_id)
                    if a["external_userid"] == ext and "pending" not in (a["welcome"], a["tag"], a["invite"])
                ),
                None,
            )
        )
    )


def scan(env: Env, config_id: str, **kw: Any) -> tuple[str, str]:
    userid, ext, _, resp = actions.scan(env.srv, config_id, **kw)
    assert resp is not None and resp.text == "success"
    return userid, ext


def test_scan_is_attributed_welcomed_tagged_invited_and_caps_rotate(env: Env) -> None:
    r = httpx.post(f"{env.base}/api/wecom/codes", json=code_body(env), headers=env.h)
    assert r.status_code == 201, r.text
    code = r.json()
    way = env.srv.company.contact_ways[code["config_id"]]  # made in WeCom with the state and both guides
    assert way["state"] == code["state"] and len(code["state"]) <= 30 and way["type"] == 2
    assert way["user"] == ["guide0001", "guide0002"] and code["state"].startswith(f"c{code['id']:x}.ch_store.")

    # a customer of Shanghai, known to OneID by unionid, scans: guide0001 (round-robin starts there)
    with env.ctx.warehouse.transaction() as cur:
        cur.execute("INSERT INTO customers (brand_id, customer_id, name, city) VALUES ('acme','cust-sh','张三','上海')")
        cur.execute(
            "INSERT INTO identities (brand_id, id_type, id_value, customer_id) "
            "VALUES ('acme','unionid','oShanghai000000000000000001','cust-sh')"
        )
    c1 = actions.new_contact(env.srv, "张三", unionid="oShanghai000000000000000001")
    userid, ext = scan(env, code["config_id"], contact=c1)
    assert userid == "guide0001"
    a1 = done_add(env, code["id"], ext)
    assert (a1["guide_id"], a1["welcome"], a1["tag"], a1["invite"]) == ("g1", "sent", "marked", "attached")

    rel = env.ctx.warehouse.fetch(
        "SELECT state, channel_id FROM relations WHERE brand_id='acme' AND external_userid=? AND guide_id='g1'", [ext]
    )
    assert rel == [("active", "ch_store")]  # attributed to the code's channel, not the raw state
    sent = [w for w in env.srv.company.welcome_sent if w["external_userid"] == ext]
    assert len(sent) == 1 and sent[0]["content"] == "张三您好，我是王导购，送您10元无门槛券"
    kinds = [a["msgtype"] for a in sent[0]["attachments"]]
    assert kinds == ["image", "link"]
    join = env.srv.company.join_ways[code_key(env, code["id"], "0")]
    assert join["chat_id_list"] == [env.chat_sh] and sent[0]["attachments"][1]["link"]["url"] == join["qr_code"]
    tag = next(t for t in env.srv.company.tags.values() if t["name"] == "门店")
    group = env.srv.company.tag_groups[tag["group_id"]]
    assert group["name"] == "渠道"
    tag_id = next(k for k, v in env.srv.company.tags.items() if v is tag)
    assert tag_id in env.srv.company.relations[("guide0001", ext)].tag_ids
    assert env.ctx.warehouse.fetch(
        "SELECT tag_id FROM identifier_tags WHERE brand_id='acme' AND id_value=?", [ext]
    ) == [(tag_id,)]

    # g1 reached their cap of 1: the code now shows only g2
    wait_for(lambda: env.srv.company.contact_ways[code["config_id"]]["user"] == ["guide0002"])
    got = []
    for _ in range(2):
        uid, e = scan(env, code["config_id"])
        got.append(uid)
        done_add(env, code["id"], e)
    assert got == ["guide0002", "guide0002"]
    # g2 reached 2: the fallback takes the code
    wait_for(lambda: env.srv.company.contact_ways[code["config_id"]]["user"] == ["guide0003"])
    uid, e4 = scan(env, code["config_id"])
    a4 = done_add(env, code["id"], e4)
    assert uid == "guide0003" and a4["guide_id"] == "g3" and a4["invite"] == "attached"
    # no city known: the default rule's group; the join way is made once per rule and reused
    assert code_key(env, code["id"], "1") and len(env.srv.company.join_ways) == 2

    # every welcome went out once, with the variables filled per guide
    contents = [w["content"] for w in env.srv.company.welcome_sent]
    assert len(contents) == 4 and contents[1].endswith("我是李导购，送您10元无门槛券") and "{" not in "".join(contents)

    # the same callback again (WeCom's retry) is deduplicated: no second welcome, no second add
    env.srv.callback.send(env.srv.sent[-1], str(env.srv.sent[-1]["CreateTime"]))
    time.sleep(0.5)
    assert len(env.srv.company.welcome_sent) == 4 and len(adds(env, code["id"])) == 4

    # losses: the customer deletes g2 (删粉), g3 deletes their customer
    g2_ext = next(a["external_userid"] for a in adds(env, code["id"]) if a["guide_id"] == "g2")
    actions.customer_deletes(env.srv, "guide0002", g2_ext)
    actions.member_deletes(env.srv, "guide0003", e4)

    def settled() -> dict[str, Any] | None:
        s = httpx.get(f"{env.base}/api/wecom/codes/{code['id']}/stats", headers=env.h).json()
        return s if s["lost_customer"] == 1 and s["lost_guide"] == 1 else None

    st = wait_for(settled)
    assert (st["adds"], st["net"]) == (4, 2)
    assert {g["guide_id"]: g["adds"] for g in st["guides"]} == {"g1": 1, "g2": 2, "g3": 1}
    assert sum(d["adds"] for d in st["days"]) == 4 and st["days"][-1]["net"] == 2

    # a guide sees only their own adds, and only codes they are on
    hg = _login(env.base, "wang", "s3cret-pass")
    mine = httpx.get(f"{env.base}/api/wecom/codes/{code['id']}/stats", headers=hg).json()
    assert (mine["adds"], [g["guide_id"] for g in mine["guides"]]) == (1, ["g1"])
    assert [
        a["guide_id"] for a in httpx.get(f"{env.base}/api/wecom/codes/{code['id']}/adds", headers=hg).json()["items"]
    ] == ["g1"]
    assert httpx.post(f"{env.base}/api/wecom/codes", json=code_body(env), headers=hg).status_code == 403
    other = httpx.post(
        f"{env.base}/api/wecom/codes",
        json=code_body(env, guides=[{"guide_id": "g2"}], fallback_guide_id=None),
        headers=env.h,
    ).json()
    assert httpx.get(f"{env.base}/api/wecom/codes/{other['id']}", headers=hg).status_code == 403
    assert [c["id"] for c in httpx.get(f"{env.base}/api/wecom/codes", headers=hg).json()["items"]] == [code["id"]]


def code_key(env: Env, code_id: int, rule: str) -> str:
    row = httpx.get(f"{env.base}/api/wecom/codes/{code_id}", headers=env.h).json()
    return str(row["join_ways"][rule]["config_id"])


def test_expired_welcome_is_recorded_and_invite_follows_up(env: Env) -> None:
    code = httpx.post(
        f"{env.base}/api/wecom/codes",
        json=code_body(env, guides=[{"guide_id": "g1"}], fallback_guide_id=None),
        headers=env.h,
    ).json()
    env.srv.advance(-25)  # the add happened 25 s ago (callbacks within the 300 s replay window are accepted)
    try:
        _, ext = scan(env, code["config_id"])
    finally:
        env.srv.advance(25)
    a = done_add(env, code["id"], ext)
    assert a["welcome"] == "expired" and "after the add" in a["welcome_detail"]
    assert env.srv.company.welcome_sent == []  # WeCom was not even asked
    assert a["invite"] == "follow_up"  # the invite became a 1:1 task for the guide
    task = next(iter(env.srv.company.templates.values()))
    assert task["sender"] == "guide0001" and task["targets"] == [ext]
    assert task["attachments"][0]["msgtype"] == "link"


def test_41096_is_retried_and_41051_is_final(env: Env) -> None:
    code = httpx.post(
        f"{env.base}/api/wecom/codes",
        json=code_body(env, guides=[{"guide_id": "g1"}], fallback_guide_id=None, group_rules=[]),
        headers=env.h,
    ).json()
    env.srv.inject("send_welcome_msg", 41096, 2)
    _, ext = scan(env, code["config_id"])
    a = done_add(env, code["id"], ext)
    assert a["welcome"] == "sent" and a["invite"] == "none"
    assert len(env.srv.company.welcome_sent) == 1
    env.srv.inject("send_welcome_msg", 41051, 1)
    calls = env.srv.counts["send_welcome_msg"]
    _, ext2 = scan(env, code["config_id"])
    a2 = done_add(env, code["id"], ext2)
    assert a2["welcome"] == "delivered_before" and env.srv.counts["send_welcome_msg"] == calls + 1


def test_bad_input_names_the_field(env: Env) -> None:
    def err(**over: Any) -> tuple[int, Any]:
        r = httpx.post(f"{env.base}/api/wecom/codes", json=code_body(env, **over), headers=env.h)
        return r.status_code, r.json()

    for over, fld in [
        ({"channel_id": "nope"}, "channel_id"),
        ({"guides": [{"guide_id": "g9"}]}, "guides"),
        ({"guides": [{"guide_id": "g4"}]}, "guides"),  # no wecom_userid
        ({"guides": [{"guide_id": "g1", "cap": 0}]}, "daily_cap"),
        ({"fallback_guide_id": "g1"}, "fallback_guide_id"),
        ({"welcome": {"text": "hi {nickname}"}}, "text"),
        ({"welcome": {"attachments": [{"msgtype": "link", "link": {"title": "x"}}]}}, "attachments"),
    ]:
        code, body = err(**over)
        assert code == 400 and body.get("field") == fld, (over, body)
    code, _ = err(group_rules=[{"chat_ids": ["a", "b", "c", "d", "e", "f"]}])
    assert code == 422  # ≤ 5 chats per join way, refused by the request schema
    assert httpx.get(f"{env.base}/api/wecom/codes", headers=env.h).json()["items"] == []
    assert env.srv.company.contact_ways == {}  # nothing was made in WeCom for refused codes


def test_update_delete_and_qr(env: Env) -> None:
    code = httpx.post(f"{env.base}/api/wecom/codes", json=code_body(env), headers=env.h).json()
    r = httpx.patch(
        f"{env.base}/api/wecom/codes/{code['id']}",
        json={"campaign": "summer", "guides": [{"guide_id": "g2"}, {"guide_id": "g1", "cap": 5}]},
        headers=env.h,
    )
    assert r.status_code == 200, r.text
    way = env.srv.company.contact_ways[code["config_id"]]
    assert (
        way["state"] == r.json()["state"] and ".summer." in way["state"] and way["user"] == ["guide0002", "guide0001"]
    )
    png = httpx.get(f"{env.base}/api/wecom/codes/{code['id']}/qr", headers=env.h)
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG") and png.headers["content-type"] == "image/png"
    svg = httpx.get(f"{env.base}/api/wecom/codes/{code['id']}/qr?format=svg", headers=env.h)
    assert b"<svg" in svg.content
    assert (
        httpx.get(f"{env.base}/api/wecom/codes/{code['id']}/qr?format=gif", headers=env.h).json()["field"] == "format"
    )
    import io

    import segno

    expected = io.BytesIO()  # the image is the QR of the code's WeCom URL
    segno.make(way["qr_code"], error="m").save(expected, kind="svg", scale=8, border=2)
    assert svg.content == expected.getvalue()
    assert httpx.delete(f"{env.base}/api/wecom/codes/{code['id']}", headers=env.h).json()["status"] == "deleted"
    assert code["config_id"] not in env.srv.company.contact_ways
    assert httpx.get(f"{env.base}/api/wecom/codes", headers=env.h).json()["items"] == []
    listed = httpx.get(f"{env.base}/api/wecom/codes?include_deleted=true", headers=env.h).json()["items"]
    assert [c["status"] for c in listed] == ["deleted"]


def test_migration_matches_models(ctx: Context) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import siyu.stores.state.channel_code_models  # noqa: F401
    from siyu.stores.state.models import Base

    with ctx.engine.connect() as con:
        diff = compare_metadata(MigrationContext.configure(con), Base.metadata)
    mine = [d for d in diff if "channel_code" in json.dumps(str(d))]
    assert mine == []


def test_a_crash_after_sending_does_not_send_twice(env: Env) -> None:
    """A worker killed after WeCom took the welcome but before it was recorded: the re-run asks WeCom once more,
    gets 41051 (already delivered) and records it; the customer got one welcome."""
    from sqlalchemy import update

    from siyu.services.wecom.processing import process_pending
    from siyu.stores.state.channel_code_models import ChannelCodeAddRow
    from siyu.stores.state.wecom_models import WeComCallbackRow

    code = httpx.post(
        f"{env.base}/api/wecom/codes",
        json=code_body(env, guides=[{"guide_id": "g1"}], fallback_guide_id=None, group_rules=[]),
        headers=env.h,
    ).json()
    _, ext = scan(env, code["config_id"])
    a = done_add(env, code["id"], ext)
    assert a["welcome"] == "sent"
    with env.ctx.sessions() as s, s.begin():  # the state a kill -9 between the send and its record leaves
        s.execute(update(ChannelCodeAddRow).where(ChannelCodeAddRow.id == a["id"]).values(welcome="sending"))
        s.execute(update(WeComCallbackRow).values(status="pending"))
    calls = env.srv.counts["send_welcome_msg"]
    process_pending(env.ctx, "acme")
    again = next(x for x in adds(env, code["id"]) if x["id"] == a["id"])
    assert again["welcome"] == "delivered_before" and env.srv.counts["send_welcome_msg"] == calls + 1
    assert len(env.srv.company.welcome_sent) == 1 and len(adds(env, code["id"])) == 1
    assert again["tag"] == "marked"  # finished steps are not redone


def test_capped_guides_come_back_the_next_day(env: Env) -> None:
    from sqlalchemy import update

    from siyu.services.wecom.channel_codes import refresh_due
    from siyu.stores.state.channel_code_models import ChannelCodeAddRow
    from siyu.workers.schedule import SCHEDULES

    code = httpx.post(
        f"{env.base}/api/wecom/codes",
        json=code_body(env, guides=[{"guide_id": "g1", "cap": 1}], group_rules=[]),
        headers=env.h,
    ).json()
    assert env.srv.company.contact_ways[code["config_id"]]["type"] == 2  # a fallback needs a changeable code
    _, ext = scan(env, code["config_id"])
    done_add(env, code["id"], ext)
    wait_for(lambda: env.srv.company.contact_ways[code["config_id"]]["user"] == ["guide0003"])
    assert refresh_due(env.ctx) == 0  # still today: nothing to change
    with env.ctx.sessions() as s, s.begin():  # the add now lies in yesterday (China time)
        s.execute(update(ChannelCodeAddRow).values(day="2000-01-01"))
    assert refresh_due(env.ctx) == 1
    assert env.srv.company.contact_ways[code["config_id"]]["user"] == ["guide0001"]
    got = httpx.get(f"{env.base}/api/wecom/codes/{code['id']}", headers=env.h).json()
    assert (got["users"], got["rotation"]) == (["guide0001"], "single")
    assert any(s.target == "siyu.services.wecom.channel_codes:refresh_due" for s in SCHEDULES)
