"""Welcome messages over real HTTP (/api/wecom/welcome): counts per code from the onboarding records, the preview
with variables filled, the latest sends; a guide sees only the codes they are on and their own sends; limits named.
And the demo simulator refuses a WeCom that is not the local server with /_sim endpoints."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from siyu.api.app import create_app
from siyu.domain.models import Role
from siyu.errors import SiyuError
from siyu.services import brands
from siyu.services.context import Context
from siyu.services.wecom import simulator
from siyu.services.wecom.config import WeComConfig, set_config
from tests.support.live import live_server
from tests.wecom_server import WeComServer, actions, running, seed

TOKEN, KEY, CORP = "QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wwlocal0000000001"


@dataclass
class Env:
    ctx: Context
    srv: WeComServer
    base: str
    admin: dict[str, str]
    wang: dict[str, str]


def _login(base: str, user: str) -> dict[str, str]:
    tok = httpx.post(f"{base}/api/auth/login", json={"username": user, "password": "s3cret-pass"}).json()["token"]
    return {"Authorization": f"Bearer {tok}"}


@pytest.fixture
def env(ctx: Context) -> Iterator[Env]:
    brands.create_brand(ctx, "acme", "Acme")
    brands.create_user(ctx, "acme", "admin", "s3cret-pass", Role.ADMIN)
    brands.create_user(ctx, "acme", "wang", "s3cret-pass", Role.GUIDE, guide_id="g1")
    srv = WeComServer(corpid=CORP)
    seed(srv.company, guides=2, contacts_per_guide=1)
    with ctx.warehouse.transaction() as cur:
        cur.execute(
            "INSERT INTO guides (brand_id, guide_id, name, wecom_userid) VALUES "
            "('acme','g1','王导购','guide0001'), ('acme','g2','李导购','guide0002')"
        )
        cur.execute(
            "INSERT INTO channels (brand_id, channel_id, name, kind) VALUES ('acme','ch_store','门店','offline')"
        )
    with running(srv) as wecom, live_server(create_app(ctx, with_console=False)) as base:
        set_config(ctx, "acme", WeComConfig(CORP, TOKEN, KEY, secret="contact-secret", api_base=wecom))
        srv.connect_callbacks(f"{base}/api/wecom/callback/acme", TOKEN, KEY)
        yield Env(ctx, srv, base, _login(base, "admin"), _login(base, "wang"))


def _code(env: Env, name: str, guide: str, text: str, coupon: str) -> dict[str, Any]:
    body = {
        "name": name,
        "channel_id": "ch_store",
        "guides": [{"guide_id": guide}],
        "welcome": {"text": text, "coupon": {"id": "cp1", "title": coupon}},
    }
    r = httpx.post(f"{env.base}/api/wecom/codes", json=body, headers=env.admin, timeout=30)
    assert r.status_code == 201, r.text
    return dict(r.json())


def _scan(env: Env, code: dict[str, Any]) -> str:
    _, ext, _, resp = actions.scan(env.srv, code["config_id"])
    assert resp is not None and resp.text == "success"
    return str(ext)


def _settled(env: Env, code_id: int, n: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        adds = httpx.get(f"{env.base}/api/wecom/codes/{code_id}/adds", headers=env.admin).json()["items"]
        if len(adds) == n and all(a["tag"] != "pending" and a["welcome"] not in ("pending", "sending") for a in adds):
            return list(adds)
        time.sleep(0.05)
    raise AssertionError(f"code {code_id}: {n} settled adds not seen in time")


def test_welcome_counts_preview_sends_and_guide_scope(env: Env) -> None:
    a = _code(env, "收银台", "g1", "{name}您好，我是{guide}，送您{coupon}", "新人礼券")
    b = _code(env, "橱窗", "g2", "欢迎{name}", "小样")
    ext_a = [_scan(env, a), _scan(env, a)]
    ext_b = _scan(env, b)
    adds_a, adds_b = _settled(env, a["id"], 2), _settled(env, b["id"], 1)

    r = httpx.get(f"{env.base}/api/wecom/welcome", headers=env.admin).json()
    by_id = {i["code_id"]: i for i in r["items"]}
    assert set(by_id) == {a["id"], b["id"]}
    for code, adds in ((a, adds_a), (b, adds_b)):  # counts equal the onboarding records, by status
        item = by_id[code["id"]]
        assert item["adds"] == len(adds)
        for status in r["statuses"]:
            assert item[status] == sum(1 for x in adds if x["welcome"] == status)
    assert by_id[a["id"]]["sent"] == 2 and by_id[a["id"]]["coupon"] == "新人礼券"
    assert by_id[b["id"]]["text"] == "欢迎{name}"

    p = httpx.get(f"{env.base}/api/wecom/welcome/{a['id']}/preview", params={"name": "阿May"}, headers=env.admin)
    assert p.json()["text"] == "阿May您好，我是王导购，送您新人礼券"

    sends = httpx.get(f"{env.base}/api/wecom/welcome/sends", headers=env.admin).json()["items"]
    assert [s["external_userid"] for s in sends] == [ext_b, *reversed(ext_a)]  # newest first
    sent_text = {x["external_userid"]: x["welcome_text"] for x in adds_a}
    assert all(s["text"] == sent_text[s["external_userid"]] for s in sends if s["code_id"] == a["id"])

    # a guide: only the code they are on, only their own sends; another guide's code is refused
    mine = httpx.get(f"{env.base}/api/wecom/welcome", headers=env.wang).json()["items"]
    assert [i["code_id"] for i in mine] == [a["id"]] and mine[0]["sent"] == 2
    their = httpx.get(f"{env.base}/api/wecom/welcome/sends", headers=env.wang).json()["items"]
    assert sorted(s["external_userid"] for s in their) == sorted(ext_a)
    assert httpx.get(f"{env.base}/api/wecom/welcome/{b['id']}/preview", headers=env.wang).status_code == 403

    # limits and bad input are named
    bad = [
        ("/sends", {"limit": 501}, "limit"),
        ("/sends", {"status": "bogus"}, "status"),
        (f"/{a['id']}/preview", {"name": "x" * 31}, "name"),
    ]
    for path, params, fld in bad:
        resp = httpx.get(f"{env.base}/api/wecom/welcome{path}", params=params, headers=env.admin)
        assert resp.status_code == 422 and fld in resp.text
    assert httpx.get(f"{env.base}/api/wecom/welcome").status_code == 401


def test_simulator_only_for_a_local_server_with_sim_endpoints(env: Env) -> None:
    # the in-process test server follows WeCom's protocol but has no /_sim endpoints: not offered
    assert simulator.is_local(env.ctx, "acme") is False
    with pytest.raises(SiyuError) as err:
        simulator.scan(env.ctx, "acme", 1)
    assert err.value.field == "api_base"
    set_config(env.ctx, "acme", WeComConfig(CORP, TOKEN, KEY, secret="contact-secret"))  # the real WeCom
    assert simulator.is_local(env.ctx, "acme") is False
    assert simulator.is_local(env.ctx, "nobrand") is False
