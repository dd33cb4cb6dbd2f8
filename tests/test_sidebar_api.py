"""The sidebar over real HTTP against the local WeCom server: WeCom OAuth (authorize page → code →
auth/getuserinfo → guide), signed links, the JS-SDK configuration the page gets (signature checked against the
ticket the server issued), a guide reading another guide's customer (403 on every route), tag edits reaching
WeCom (CSRF required), scripts: search, prepare (the sendChatMessage argument + a one-time token) and confirm
(counted only for sendChatMessage:ok, once), group chats (summary, scripts, who may see which group), and WeCom's
trusted-domain verification file served at the web root."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select, update

from siyu.api.app import create_app
from siyu.connectors.wecom.jssdk import signature
from siyu.domain.models import Role
from siyu.services import brands
from siyu.services.context import Context
from siyu.services.sidebar.config import SidebarConfig, set_sidebar_config
from siyu.services.wecom import tags
from siyu.services.wecom.config import client_for, get_config
from siyu.stores.state.script_models import ScriptSendRow, ScriptUseRow
from tests.support.live import live_server
from tests.test_wecom_ops_env import ADMIN, Env, wecom_brand
from tests.wecom_server.routes_jssdk import state

PW = "s3cret-pass"


@dataclass
class Side:
    env: Env
    base: str
    tag_ids: list[str]

    def ext_of(self, userid: str) -> str:
        return sorted(e for (u, e) in self.env.srv.company.relations if u == userid)[0]

    def cid_of(self, userid: str) -> str:
        return self.env.customer_of(self.ext_of(userid))


@contextmanager
def sidebar_env(ctx: Context) -> Iterator[Side]:
    """Brand acme with 2 guides × 3 customers synced from the local WeCom server, two corp tags, the sidebar app
    configured (OAuth on the local server) and the API served; an admin user ``ops``."""
    with wecom_brand(ctx, guides=2, per_guide=3) as env:
        client = client_for(get_config(ctx, "acme"))
        made = [tags.create_tag(ctx, ADMIN, client, n, group_name="意向") for n in ("高意向", "已到店")]
        set_sidebar_config(ctx, "acme", SidebarConfig("1000002", oauth_base=env.wecom))
        brands.create_user(ctx, "acme", "ops", PW, Role.ADMIN)
        with live_server(create_app(ctx, with_console=False)) as base:
            yield Side(env, base, [str(m["id"]) for m in made])


def oauth_login(side: Side, userid: str | None) -> httpx.Client:
    """Open the sidebar as the WeCom client would, signed in to WeCom as ``userid``; returns the browser."""
    state(side.env.srv).member = userid
    web = httpx.Client(base_url=side.base, follow_redirects=False, timeout=30)
    first = web.get("/sidebar/acme/")
    assert first.status_code == 302
    auth = first.headers["location"]
    q = parse_qs(urlsplit(auth).query)
    assert auth.startswith(side.env.wecom + "/connect/oauth2/authorize?") and auth.endswith("#wechat_redirect")
    assert (q["appid"], q["agentid"], q["scope"]) == (["wwlocal0000000001"], ["1000002"], ["snsapi_base"])
    assert q["redirect_uri"] == [side.base + "/sidebar/acme/"]
    back = httpx.get(auth.split("#")[0], follow_redirects=False)  # the WeCom client follows the authorize page
    assert back.status_code == 302 and back.headers["location"].startswith(side.base + "/sidebar/acme/?code=")
    web.get(back.headers["location"].removeprefix(side.base))
    return web


def csrf(web: httpx.Client, path: str) -> str:
    page = web.get(path)
    assert page.status_code == 200, page.text
    found = re.search(r'csrf: "([0-9a-f]{64})"', page.text)
    assert found
    return found.group(1)


def test_oauth_scope_and_tags(ctx: Context) -> None:
    with sidebar_env(ctx) as side:
        web = oauth_login(side, "guide0001")
        assert web.get("/sidebar/acme/").status_code == 200  # signed in: the entry page
        mine, theirs = side.cid_of("guide0001"), side.cid_of("guide0002")
        got = web.get(f"/sidebar/acme/ext/{side.ext_of('guide0001')}")
        assert (got.status_code, got.headers["location"]) == (302, f"/sidebar/acme/c/{mine}")
        view = web.get(f"/sidebar/acme/api/customer/{mine}").json()
        assert view["customer_id"] == mine and view["next_actions"][-1]["code"] == "keep_in_touch"
        assert [r["guide_id"] for r in view["relations"]] == ["g1"]

        # another guide's customer: 403 through every route, and the same for an id that does not exist
        for path in (
            f"/sidebar/acme/api/customer/{theirs}",
            f"/sidebar/acme/c/{theirs}",
            f"/sidebar/acme/ext/{side.ext_of('guide0002')}",
            "/sidebar/acme/api/customer/no-such-customer",
        ):
            assert web.get(path).status_code == 403, path
        token = csrf(web, f"/sidebar/acme/c/{mine}")
        hdr = {"x-csrf-token": token}
        denied = web.post(f"/sidebar/acme/api/customer/{theirs}/tags", json={"add": [side.tag_ids[0]]}, headers=hdr)
        assert denied.status_code == 403
        assert not side.env.srv.company.relations[("guide0002", side.ext_of("guide0002"))].tag_ids

        # tag edits go to WeCom through the guide's relation (a POST without the page's token is refused)
        path = f"/sidebar/acme/api/customer/{mine}/tags"
        assert web.post(path, json={"add": [side.tag_ids[0]]}).status_code == 403
        out = web.post(path, json={"add": side.tag_ids}, headers=hdr)
        assert out.status_code == 200, out.text
        rel = side.env.srv.company.relations[("guide0001", side.ext_of("guide0001"))]
        assert sorted(rel.tag_ids) == sorted(side.tag_ids)
        assert sorted(x["tag_id"] for x in out.json()["tags"]) == sorted(side.tag_ids)
        out = web.post(path, json={"remove": [side.tag_ids[0]]}, headers=hdr)
        assert rel.tag_ids == [side.tag_ids[1]] and [x["name"] for x in out.json()["tags"]] == ["已到店"]
        bad = web.post(path, json={"add": ["not-a-tag"]}, headers=hdr)
        assert (bad.status_code, bad.json()["field"]) == (400, "add")

        # a note is a follow-up record of the guide (seen in the follow-ups API), shown on the page
        notes = f"/sidebar/acme/api/customer/{mine}/notes"
        noted = web.post(notes, json={"text": "想要 L 码，下周到店"}, headers=hdr)
        assert noted.status_code == 200, noted.text
        assert noted.json()["notes"][0]["text"] == "想要 L 码，下周到店"
        admin = httpx.Client(base_url=side.base, auth=("ops", PW))
        records = admin.get("/api/followups", params={"customer_id": mine}).json()["items"]
        assert [(f["content"], f["guide_id"], f["kind"]) for f in records] == [("想要 L 码，下周到店", "g1", "other")]
        admin = httpx.Client(base_url=side.base, auth=("ops", PW))
        assert (web.post(notes, json={"text": " "}, headers=hdr).json()["field"]) == "text"
        # a call with a next follow-up date and a sales stage: the reminder and the stage are the follow-ups'
        nxt = (datetime.now() + timedelta(days=3)).date().isoformat()
        call = {"text": "电话确认尺码", "kind": "call", "next_at": nxt, "stage": "需求确认"}
        done = web.post(notes, json=call, headers=hdr)
        assert done.status_code == 200, done.text
        assert (done.json()["sales"]["stage"], done.json()["sales"]["next_followup_at"][:10]) == ("需求确认", nxt)
        latest = admin.get("/api/followups", params={"customer_id": mine}).json()["items"][0]
        assert (latest["kind"], latest["stage"], latest["reminder"]) == ("call", "需求确认", "open")
        per_stage = {x["stage"]: x["customers"] for x in admin.get("/api/followups/stages").json()["stages"]}
        assert per_stage["需求确认"] == 1
        for bad, fld in (({"stage": "不存在"}, "stage"), ({"kind": "fax"}, "kind"), ({"next_at": "soon"}, "next_at")):
            answer = web.post(notes, json={"text": "x", **bad}, headers=hdr)
            assert (answer.status_code, answer.json()["field"]) == (400, fld)
        assert web.get(f"/sidebar/acme/api/customer/{mine}").json()["sales"]["stage"] == "需求确认"
        theirs_notes = f"/sidebar/acme/api/customer/{theirs}/notes"
        assert web.post(theirs_notes, json={"text": "x"}, headers=hdr).status_code == 403
        page = web.get(f"/sidebar/acme/c/{mine}")
        assert "想要 L 码，下周到店" in page.text and len(page.content) < 30_000  # a light page

        # who may open it: not a member / a member who is not a guide → 403; a used code is refused
        assert oauth_login(side, None).get("/sidebar/acme/").status_code == 302  # no session was made
        side.env.srv.company.members["boss"] = "老板"
        state(side.env.srv).member = "boss"
        web2 = httpx.Client(base_url=side.base, follow_redirects=False)
        auth = web2.get("/sidebar/acme/").headers["location"].split("#")[0]
        code_url = httpx.get(auth, follow_redirects=False).headers["location"].removeprefix(side.base)
        assert web2.get(code_url).status_code == 403
        assert web2.get(code_url).status_code == 401  # WeCom answers 40029 for a code used twice


def test_jssdk_config_and_links(ctx: Context) -> None:
    with sidebar_env(ctx) as side:
        web = oauth_login(side, "guide0001")
        mine = side.cid_of("guide0001")
        url = f"{side.base}/sidebar/acme/c/{mine}"
        cfg = web.get("/sidebar/acme/api/jssdk", params={"url": url}).json()
        tickets = {kind: tok for tok, (kind, _exp) in state(side.env.srv).tickets.items()}
        a, c = cfg["agent_config"], cfg["config"]
        assert a["signature"] == signature(tickets["agent"], a["nonceStr"], a["timestamp"], url)
        assert c["signature"] == signature(tickets["corp"], c["nonceStr"], c["timestamp"], url)
        assert "sendChatMessage" in a["jsApiList"] and a["agentid"] == "1000002"
        other = web.get("/sidebar/acme/api/jssdk", params={"url": "https://evil.example/sidebar/acme/"})
        assert (other.status_code, other.json()["field"]) == (400, "url")
        assert httpx.get(side.base + "/sidebar/acme/api/jssdk", params={"url": url}).status_code == 401

        # signed links (outside WeCom): made by an admin, open the customer as the guide
        admin = httpx.Client(base_url=side.base, auth=("ops", PW))
        made = admin.post("/api/sidebar/links", json={"guide_id": "g1", "customer_id": mine})
        assert made.status_code == 200, made.text
        browser = httpx.Client(base_url=side.base, follow_redirects=False)
        opened = browser.get(made.json()["path"])
        assert (opened.status_code, opened.headers["location"]) == (302, f"/sidebar/acme/c/{mine}")
        assert browser.get(f"/sidebar/acme/c/{mine}").status_code == 200
        assert browser.get(f"/sidebar/acme/c/{side.cid_of('guide0002')}").status_code == 403
        theirs = admin.post("/api/sidebar/links", json={"guide_id": "g1", "customer_id": side.cid_of("guide0002")})
        assert theirs.status_code == 404  # a link for a customer the guide does not have is not made
        forged = httpx.get(side.base + made.json()["path"][:-3] + "xyz", follow_redirects=False)
        assert forged.status_code == 401
        assert admin.get("/api/sidebar/config").json()["agent_id"] == "1000002"


def test_scripts_search_send_and_usage(ctx: Context) -> None:
    with sidebar_env(ctx) as side:
        admin = httpx.Client(base_url=side.base, auth=("ops", PW))
        folder = admin.post("/api/scripts/folders", json={"name": "开场白"}).json()
        sub = admin.post("/api/scripts/folders", json={"name": "节日", "parent_id": folder["id"]}).json()
        hello = admin.post(
            "/api/scripts",
            json={"kind": "text", "title": "新客欢迎", "body": "{name} 您好，我是{guide}", "folder_id": folder["id"]},
        ).json()
        card = admin.post(
            "/api/scripts",
            json={
                "kind": "link",
                "title": "春季新品",
                "body": "新品上市，欢迎选购",
                "payload": {"url": "https://shop.example/spring"},
                "keywords": "新品 春季",
                "folder_id": sub["id"],
            },
        ).json()
        admin.post("/api/scripts", json={"kind": "text", "title": "售后", "body": "请问哪里不满意？"})
        bad = admin.post("/api/scripts", json={"kind": "link", "title": "x", "payload": {"url": "ftp://x"}})
        assert (bad.status_code, bad.json()["field"]) == (400, "payload.url")

        web = oauth_login(side, "guide0001")
        mine = side.cid_of("guide0001")
        hdr = {"x-csrf-token": csrf(web, f"/sidebar/acme/c/{mine}")}
        find = web.get("/sidebar/acme/api/scripts", params={"q": "新品"}).json()
        assert [i["id"] for i in find["items"]] == [card["id"]]
        in_folder = admin.get("/api/scripts", params={"folder_id": folder["id"], "sort": "title"}).json()
        assert {i["id"] for i in in_folder["items"]} == {hello["id"], card["id"]}  # with its sub-folder
        assert admin.get("/api/scripts", params={"folder_id": 0}).json()["total"] == 1
        assert web.post("/api/scripts", json={"kind": "text", "title": "x", "body": "y"}).status_code == 401

        def prepare(script_id: int, **target: str) -> dict[str, Any]:
            got = web.post(f"/sidebar/acme/api/scripts/{script_id}/prepare", json=target, headers=hdr)
            assert got.status_code == 200, got.text
            return dict(got.json())

        def confirm(token: str, err_msg: str = "sendChatMessage:ok") -> httpx.Response:
            return web.post("/sidebar/acme/api/scripts/confirm", json={"token": token, "err_msg": err_msg}, headers=hdr)

        sent = prepare(hello["id"], customer_id=mine)
        name = web.get(f"/sidebar/acme/api/customer/{mine}").json()["name"]
        assert sent["message"] == {"msgtype": "text", "enterChat": True, "text": {"content": f"{name} 您好，我是导购1"}}
        assert sent["use_count"] == 0 and len(sent["token"]) >= 32
        # prepared but never confirmed: nothing counted
        assert admin.get(f"/api/scripts/{hello['id']}").json()["use_count"] == 0
        ok = confirm(sent["token"])
        assert ok.status_code == 200 and ok.json() == {
            "status": "sent",
            "counted": True,
            "use_count": 1,
            "script_id": hello["id"],
        }
        again = confirm(sent["token"])  # a token confirms once
        assert (again.status_code, again.json()["field"]) == (409, "token")
        assert admin.get(f"/api/scripts/{hello['id']}").json()["use_count"] == 1

        tokens = [prepare(card["id"], customer_id=mine)["token"] for _ in range(4)]
        news = prepare(card["id"], customer_id=mine)
        assert news["message"]["news"]["link"] == "https://shop.example/spring"
        assert [confirm(t).json()["counted"] for t in tokens[:3]] == [True, True, True]
        cancelled = confirm(tokens[3], "sendChatMessage:cancel").json()  # the guide cancelled in WeCom
        assert (cancelled["status"], cancelled["counted"], cancelled["use_count"]) == ("cancelled", False, 3)
        assert confirm(tokens[3]).status_code == 409  # a cancelled send cannot be turned into a sent one
        failed = confirm(news["token"], "sendChatMessage:fail, no permission").json()
        assert (failed["status"], failed["counted"]) == ("failed", False)
        assert confirm("not-a-token").status_code == 404
        assert (
            web.post("/sidebar/acme/api/scripts/confirm", json={"token": tokens[0], "err_msg": "x"}).status_code == 403
        )

        # a prepare not confirmed in time expires uncounted
        late = prepare(card["id"], customer_id=mine)
        with ctx.sessions() as s, s.begin():
            s.execute(
                update(ScriptSendRow).where(ScriptSendRow.status == "prepared").values(expires_at=datetime(2020, 1, 1))
            )
        expired = confirm(late["token"])
        assert (expired.status_code, expired.json()["field"]) == (400, "token") and "expired" in expired.text

        # another guide cannot confirm g1's token
        web2 = oauth_login(side, "guide0002")
        hdr2 = {"x-csrf-token": csrf(web2, f"/sidebar/acme/c/{side.cid_of('guide0002')}")}
        other = prepare(card["id"], customer_id=mine)
        stolen = web2.post(
            "/sidebar/acme/api/scripts/confirm",
            json={"token": other["token"], "err_msg": "sendChatMessage:ok"},
            headers=hdr2,
        )
        assert stolen.status_code == 404

        theirs = side.cid_of("guide0002")
        denied = web.post(f"/sidebar/acme/api/scripts/{card['id']}/prepare", json={"customer_id": theirs}, headers=hdr)
        assert denied.status_code == 403
        neither = web.post(f"/sidebar/acme/api/scripts/{card['id']}/prepare", json={}, headers=hdr)
        assert (neither.status_code, neither.json()["field"]) == (400, "customer_id")
        popular = admin.get("/api/scripts").json()["items"]
        assert [(i["id"], i["use_count"]) for i in popular[:2]] == [(card["id"], 3), (hello["id"], 1)]
        sends = admin.get(f"/api/scripts/{card['id']}").json()["usage"]["sends"]
        assert sends == {
            "prepared": 7,
            "sent": 3,
            "cancelled": 1,
            "failed": 1,
            "expired": 1,
            "pending": 1,
        }
        # the scripts matching the suggested next action are offered beside it
        hint = web.get(f"/sidebar/acme/api/customer/{mine}").json()["next_actions"][0]["script_hint"]
        admin.post("/api/scripts", json={"kind": "text", "title": "建议话术X", "body": "…", "keywords": hint})
        page = web.get(f"/sidebar/acme/c/{mine}").text
        assert re.search(r'data-testid="hinted">.*建议话术X', page) and "售后" not in page.split('data-testid="tags')[0]
        usage = admin.get(f"/api/scripts/{card['id']}").json()["usage"]
        assert (usage["use_count"], usage["by_guide"]) == (3, {"g1": 3})


@pytest.mark.parametrize("kind", ["image", "miniprogram", "file"])
def test_script_kinds_validate(ctx: Context, kind: str) -> None:
    from siyu.domain.scripts import ScriptInput, chat_message, validate
    from siyu.errors import SiyuError

    with pytest.raises(SiyuError) as err:
        validate(ScriptInput(kind, "t", "d", {}))
    assert str(err.value.field).startswith("payload.")
    ok = {
        "image": {"media_id": "MEDIA1"},
        "miniprogram": {"appid": "wx123", "page": "pages/index.html", "image_url": "https://x.example/c.png"},
        "file": {"url": "https://x.example/a.pdf", "file_name": "a.pdf"},
    }[kind]
    item = validate(ScriptInput(kind, "t", "d", ok))
    msg = chat_message(item.kind, item.title, item.body, item.payload or {})
    assert msg["msgtype"] == {"image": "image", "miniprogram": "miniprogram", "file": "news"}[kind]


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PDF = b"%PDF-1.4\n" + b"0" * 100


def test_images_and_files_go_through_temporary_media(ctx: Context) -> None:
    from datetime import UTC, datetime, timedelta

    from siyu.stores.state.script_models import ScriptRow

    with sidebar_env(ctx) as side:
        admin = httpx.Client(base_url=side.base, auth=("ops", PW))
        form = {"kind": "image", "title": "新品海报"}
        image = admin.post("/api/scripts/upload", data=form, files={"file": ("poster.png", PNG, "image/png")})
        assert image.status_code == 201, image.text
        assert image.json()["has_file"] is True
        gif = admin.post(
            "/api/scripts/upload", data=form, files={"file": ("a.gif", b"GIF89a" + b"0" * 50, "image/gif")}
        )
        assert (gif.status_code, gif.json()["field"]) == (400, "file")
        doc = admin.post(
            "/api/scripts/upload",
            data={"kind": "file", "title": "价目表"},
            files={"file": ("价目表.pdf", PDF, "application/pdf")},
        ).json()
        assert doc["payload"]["file_name"] == "价目表.pdf"

        web = oauth_login(side, "guide0001")
        mine = side.cid_of("guide0001")
        hdr = {"x-csrf-token": csrf(web, f"/sidebar/acme/c/{mine}")}
        srv = side.env.srv

        def send(script_id: int) -> dict[str, object]:
            got = web.post(f"/sidebar/acme/api/scripts/{script_id}/prepare", json={"customer_id": mine}, headers=hdr)
            assert got.status_code == 200, got.text
            return dict(got.json()["message"])

        msg = send(image.json()["id"])
        media_id = msg["image"]["mediaid"]  # type: ignore[index]
        assert msg["msgtype"] == "image" and srv.media[media_id]["content"] == PNG  # type: ignore[attr-defined]
        assert srv.media[media_id]["type"] == "image"  # type: ignore[attr-defined]
        assert send(image.json()["id"]) == msg and srv.counts["media/upload"] == 1  # reused, not uploaded again
        with ctx.sessions() as s, s.begin():  # less than an hour of its 3 days left: uploaded again
            row = s.get(ScriptRow, image.json()["id"])
            assert row is not None and row.media_expires_at is not None
            assert abs((row.media_expires_at - datetime.now(UTC).replace(tzinfo=None)).total_seconds() - 3 * 86400) < 60
            row.media_expires_at = datetime.now(UTC).replace(tzinfo=None) + timedelta(minutes=30)
        again = send(image.json()["id"])
        assert again["image"] != msg["image"] and srv.counts["media/upload"] == 2  # type: ignore[index]

        sent = send(doc["id"])
        stored = srv.media[sent["file"]["mediaid"]]  # type: ignore[attr-defined,index]
        assert (sent["msgtype"], stored["type"], stored["filename"], stored["content"]) == (
            "file",
            "file",
            "价目表.pdf",
            PDF,
        )
        replaced = admin.post(
            f"/api/scripts/{image.json()['id']}/file", files={"file": ("v2.png", PNG + b"v2", "image/png")}
        )
        assert replaced.status_code == 200, replaced.text
        newest = send(image.json()["id"])["image"]["mediaid"]  # type: ignore[index]
        assert srv.media[newest]["content"] == PNG + b"v2" and srv.counts["media/upload"] == 4  # type: ignore[attr-defined]


def test_group_chat(ctx: Context) -> None:
    from siyu.services.sidebar.view import stages
    from siyu.services.wecom.groups import sync_groups
    from tests.wecom_server import actions

    with sidebar_env(ctx) as side:
        srv = side.env.srv
        g1 = sorted(e for (u, e) in srv.company.relations if u == "guide0001")
        g2 = sorted(e for (u, e) in srv.company.relations if u == "guide0002")
        mine_chat = actions.add_group(srv, "guide0001", [g1[0], g1[1], g2[0]], name="VIP 群")
        their_chat = actions.add_group(srv, "guide0002", [g2[1]], name="导购2的群")
        sync_groups(ctx, "acme")
        with ctx.warehouse.transaction() as cur:  # one member bought twice: a different lifecycle stage
            for i, days in enumerate((50, 20)):
                cur.execute(
                    "INSERT INTO orders (brand_id, order_id, customer_ref_type, customer_ref, ordered_at, amount) "
                    "VALUES ('acme', ?, 'external_userid', ?, now() - INTERVAL (?) DAY, 99)",
                    [f"go{i}", g1[0], days],
                )
        web = oauth_login(side, "guide0001")
        got = web.get(f"/sidebar/acme/api/group/{mine_chat}").json()
        assert (got["name"], got["guide_id"], got["owner_name"]) == ("VIP 群", "g1", "导购1")
        assert (got["member_count"], got["customer_count"]) == (3, 3)
        # "mine" = the guide may open the customer (whatever guide_scope's rule): checked against the customer API
        flags = {m["external_userid"]: m["mine"] for m in got["members"]}
        opens = {
            ext: web.get(f"/sidebar/acme/api/customer/{side.env.customer_of(ext)}").status_code == 200
            for ext in (g1[0], g1[1], g2[0])
        }
        assert flags == opens and opens[g1[0]] and opens[g1[1]] and got["mine_count"] == sum(opens.values())
        # the lifecycle mix equals the members' stages read one customer at a time
        one_by_one: dict[str, int] = {}
        for ext in (g1[0], g1[1], g2[0]):
            stage = stages(ctx, "acme", side.env.customer_of(ext))["lifecycle"]
            one_by_one[stage] = one_by_one.get(stage, 0) + 1
        assert {m["stage"]: m["customers"] for m in got["lifecycle_mix"]} == one_by_one and len(one_by_one) == 2
        page = web.get(f"/sidebar/acme/g/{mine_chat}")
        assert page.status_code == 200 and f"/sidebar/acme/c/{side.env.customer_of(g1[0])}" in page.text
        linked = f"/sidebar/acme/c/{side.env.customer_of(g2[0])}" in page.text
        assert linked == opens[g2[0]]  # only customers the guide may open are links
        assert web.get(f"/sidebar/acme/api/group/{their_chat}").status_code == 403
        assert web.get(f"/sidebar/acme/g/{their_chat}").status_code == 403
        assert web.get("/sidebar/acme/api/group/no-such-chat").status_code == 403

        # the scripts library in the group chat: {name} becomes 大家, counted once WeCom confirms
        admin = httpx.Client(base_url=side.base, auth=("ops", PW))
        folder = admin.post("/api/scripts/folders", json={"name": "社群"}).json()
        hi = admin.post(
            "/api/scripts",
            json={"kind": "text", "title": "群公告", "body": "{name}好，我是{guide}", "folder_id": folder["id"]},
        ).json()
        assert "群公告" in page.text or "群公告" in web.get(f"/sidebar/acme/g/{mine_chat}").text
        assert web.get("/sidebar/acme/api/scripts", params={"folder_id": folder["id"]}).json()["total"] == 1
        assert [f["name"] for f in web.get("/sidebar/acme/api/scripts/folders").json()] == ["社群"]
        hdr = {"x-csrf-token": csrf(web, f"/sidebar/acme/g/{mine_chat}")}
        prep = web.post(f"/sidebar/acme/api/scripts/{hi['id']}/prepare", json={"chat_id": mine_chat}, headers=hdr)
        assert prep.status_code == 200, prep.text
        assert prep.json()["message"]["text"]["content"] == "大家好，我是导购1"
        done = web.post(
            "/sidebar/acme/api/scripts/confirm",
            json={"token": prep.json()["token"], "err_msg": "sendChatMessage:ok"},
            headers=hdr,
        )
        assert done.json()["counted"] is True
        theirs = web.post(f"/sidebar/acme/api/scripts/{hi['id']}/prepare", json={"chat_id": their_chat}, headers=hdr)
        assert (theirs.status_code, theirs.json()["field"]) == (403, "chat_id")
        both = {"chat_id": mine_chat, "customer_id": side.env.customer_of(g1[0])}
        assert web.post(f"/sidebar/acme/api/scripts/{hi['id']}/prepare", json=both, headers=hdr).status_code == 400
        with ctx.sessions() as s:
            use = s.scalars(select(ScriptUseRow).where(ScriptUseRow.script_id == hi["id"])).one()
        assert (use.chat_id, use.customer_id, use.guide_id) == (mine_chat, "", "g1")

        # the same summary through the API: operators and admins any group of the brand, a guide only their own
        brands.create_user(ctx, "acme", "g1user", PW, Role.GUIDE, guide_id="g1")
        brands.create_user(ctx, "acme", "op", PW, Role.OPERATOR)
        guide = httpx.Client(base_url=side.base, auth=("g1user", PW))
        op = httpx.Client(base_url=side.base, auth=("op", PW))
        assert guide.get(f"/api/sidebar/groups/{mine_chat}").json()["mine_count"] == got["mine_count"]
        assert guide.get(f"/api/sidebar/groups/{their_chat}").status_code == 403
        assert guide.get("/api/sidebar/groups/no-such-chat").status_code == 403
        for user in (op, admin):
            for chat, n in ((mine_chat, 3), (their_chat, 1)):
                answer = user.get(f"/api/sidebar/groups/{chat}").json()
                assert (answer["mine_count"], answer["member_count"]) == (n, n)


CODE = "AbCdEfGh12345678"


def test_wecom_verify_file(ctx: Context) -> None:
    """WeCom's trusted-domain file at the web root: exact bytes, text/plain, only WW_verify_<16>.txt names; set by
    admins (API) per brand; 404 otherwise."""
    with sidebar_env(ctx) as side:
        admin = httpx.Client(base_url=side.base, auth=("ops", PW))
        name = f"WW_verify_{CODE}.txt"
        assert httpx.get(f"{side.base}/{name}").status_code == 404  # nothing set yet
        put = admin.put("/api/sidebar/verify-file", files={"file": (name, CODE.encode(), "text/plain")})
        assert put.status_code == 200, put.text
        assert (put.json()["path"], put.json()["bytes"], put.json()["content_is_code"]) == (f"/{name}", 16, True)
        got = httpx.get(f"{side.base}/{name}")
        assert (got.status_code, got.content) == (200, CODE.encode())
        assert got.headers["content-type"].split(";")[0] == "text/plain"
        assert httpx.head(f"{side.base}/{name}").status_code == 200
        for wrong in (
            f"WW_verify_{CODE[:-1]}X.txt",
            f"WW_verify_{CODE}1.txt",
            f"ww_verify_{CODE}.txt",
            "WW_verify_.txt",
        ):
            assert httpx.get(f"{side.base}/{wrong}").status_code == 404, wrong
        assert admin.get("/api/sidebar/verify-file").json()["file"]["name"] == name

        # a replacement with other bytes (a trailing newline) is served byte for byte
        put = admin.put("/api/sidebar/verify-file", files={"file": (name, CODE.encode() + b"\n", "text/plain")})
        assert httpx.get(f"{side.base}/{name}").content == CODE.encode() + b"\n"
        bad = admin.put("/api/sidebar/verify-file", files={"file": ("WW_verify_short.txt", b"x", "text/plain")})
        assert (bad.status_code, bad.json()["field"]) == (400, "name")
        big = admin.put("/api/sidebar/verify-file", files={"file": (name, b"x" * 2000, "text/plain")})
        assert (big.status_code, big.json()["field"]) == (400, "content")
        brands.create_user(ctx, "acme", "op", PW, Role.OPERATOR)
        op = httpx.Client(base_url=side.base, auth=("op", PW))
        assert op.put("/api/sidebar/verify-file", files={"file": (name, b"x", "text/plain")}).status_code == 403

        # another brand (another WeCom company) on the same deployment: its own file is served too
        brands.create_brand(ctx, "other", "Other")
        brands.create_user(ctx, "other", "oadmin", PW, Role.ADMIN)
        oadmin = httpx.Client(base_url=side.base, auth=("oadmin", PW))
        clash = oadmin.put("/api/sidebar/verify-file", files={"file": (name, b"different", "text/plain")})
        assert (clash.status_code, clash.json()["field"]) == (409, "name")
        theirs = "WW_verify_ZZZZzzzz00001111.txt"
        assert oadmin.put(
            "/api/sidebar/verify-file", files={"file": (theirs, b"ZZZZzzzz00001111", "text/plain")}
        ).is_success
        assert httpx.get(f"{side.base}/{theirs}").content == b"ZZZZzzzz00001111"
        assert admin.delete("/api/sidebar/verify-file").json() == {"deleted": True}
        assert httpx.get(f"{side.base}/{name}").status_code == 404
        assert httpx.get(f"{side.base}/{theirs}").status_code == 200
        assert admin.delete("/api/sidebar/verify-file").json() == {"deleted": False}  # nothing to clear: no entry

        # every set and clear is an audit entry (who, which name, size and checksum; refused tries are not)
        from siyu.services import audit

        log = [
            (e.actor, e.actor_role, e.action, e.target, e.detail.get("bytes"))
            for e in ctx.sessions().scalars(
                select(audit.AuditRow).where(audit.AuditRow.action.like("wecom.verify_file.%"))
            )
        ]
        assert log == [
            ("ops", "admin", "wecom.verify_file.set", name, 16),
            ("ops", "admin", "wecom.verify_file.set", name, 17),
            ("oadmin", "admin", "wecom.verify_file.set", theirs, 16),
            ("ops", "admin", "wecom.verify_file.clear", name, None),
        ]


def test_group_admins_open_the_group_sidebar(ctx: Context) -> None:
    """A guide WeCom lists in a group's admin_list (groupchat/get) may open its sidebar like the owner; a guide who
    is neither may not; removing the admin in WeCom (and syncing) takes the access away."""
    from siyu.services.wecom.groups import sync_groups
    from tests.wecom_server import actions

    with sidebar_env(ctx) as side:
        srv = side.env.srv
        g1 = sorted(e for (u, e) in srv.company.relations if u == "guide0001")
        chat = actions.add_group(srv, "guide0001", [g1[0], g1[1]], name="店群")
        sync_groups(ctx, "acme")
        web = oauth_login(side, "guide0002")
        assert web.get(f"/sidebar/acme/api/group/{chat}").status_code == 403  # not the owner, not an admin
        assert web.get(f"/sidebar/acme/g/{chat}").status_code == 403

        actions.set_group_admins(srv, chat, ["guide0002"])
        sync_groups(ctx, "acme")
        got = web.get(f"/sidebar/acme/api/group/{chat}")
        assert got.status_code == 200, got.text
        assert (got.json()["guide_id"], got.json()["member_count"]) == ("g1", 2)  # the owner stays g1
        assert web.get(f"/sidebar/acme/g/{chat}").status_code == 200
        brands.create_user(ctx, "acme", "g2user", PW, Role.GUIDE, guide_id="g2")
        assert httpx.get(f"{side.base}/api/sidebar/groups/{chat}", auth=("g2user", PW)).status_code == 200
        # g2 administers the group, which does not make its members g2's customers
        cid = side.env.customer_of(g1[0])
        assert web.get(f"/sidebar/acme/api/customer/{cid}").status_code == 403
        assert {m["mine"] for m in got.json()["members"]} == {False}

        actions.set_group_admins(srv, chat, [])
        sync_groups(ctx, "acme")
        assert web.get(f"/sidebar/acme/api/group/{chat}").status_code == 403


def test_phone_masked_until_revealed(ctx: Context) -> None:
    """The sidebar shows the customer's phone masked; "show number" (CSRF) answers the clear number for the guide's
    own customer only and leaves a pii.reveal audit entry."""
    with sidebar_env(ctx) as side:
        mine, theirs = side.cid_of("guide0001"), side.cid_of("guide0002")
        with ctx.warehouse.transaction() as cur:  # the customers' phones, as an import would set them
            for cid, phone in ((mine, "+8613812345678"), (theirs, "+8613900001111")):
                cur.execute("UPDATE customers SET phone = ? WHERE brand_id = 'acme' AND customer_id = ?", [phone, cid])
        web = oauth_login(side, "guide0001")
        view = web.get(f"/sidebar/acme/api/customer/{mine}").json()
        assert view["phone"] == "138****5678"
        assert all("****" in e for e in view["external_userids"])
        page = web.get(f"/sidebar/acme/c/{mine}")
        assert "138****5678" in page.text and "13812345678" not in page.text
        path = f"/sidebar/acme/api/customer/{mine}/reveal"
        assert web.post(path).status_code == 403  # no CSRF token
        hdr = {"x-csrf-token": csrf(web, f"/sidebar/acme/c/{mine}")}
        shown = web.post(path, headers=hdr)
        assert shown.status_code == 200, shown.text
        assert shown.json()["phone"] == "+8613812345678"
        assert web.post(f"/sidebar/acme/api/customer/{theirs}/reveal", headers=hdr).status_code == 403
        admin = httpx.Client(base_url=side.base, auth=("ops", PW))
        entries = admin.get("/api/audit", params={"action": "pii.reveal"}).json()["items"]
        assert [(e["target"], e["detail"]["reason"]) for e in entries] == [(mine, "sidebar")]


def test_sign_ins_limited_per_address(ctx: Context) -> None:
    """Signed links and OAuth codes are limited per client address (each code costs a WeCom call): 429 naming the
    wait once the burst is spent, while an open session keeps working."""
    with sidebar_env(ctx) as side:
        web = oauth_login(side, "guide0001")
        codes = [web.get("/sidebar/acme/link", params={"t": f"forged-{i}"}).status_code for i in range(40)]
        assert 429 in codes and codes.index(429) >= 25, codes
        limited = web.get("/sidebar/acme/link", params={"t": "forged"})
        assert limited.status_code == 429 and limited.json()["field"] == "rate"
        assert web.get(f"/sidebar/acme/api/customer/{side.cid_of('guide0001')}").status_code == 200
