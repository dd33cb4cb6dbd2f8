"""Leads enter the customer pool by themselves and leave it on the WeCom add: a customers import (CLI) puts its
customers without a guide in the pool (source import, the job id); the public lead form (real HTTP: CSRF, field
errors, OneID) puts the person there (source form, the form id); a campaign helper waiting for the carrier action
becomes a lead of the campaign; when the helper adds the guide on WeCom (the local server's callback) the lead
leaves the pool owned by that guide, its source kept. Every step idempotent (one lead per customer)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from siyu.api.app import create_app
from siyu.cli.main import app as cli
from siyu.domain.models import Role
from siyu.services import brands
from siyu.services import campaigns as C
from siyu.services.campaigns.people import flush_observations
from siyu.services.context import Context
from siyu.services.guide_work import pool_feed, scheduled
from tests.support.live import live_server
from tests.test_campaign_api_wecom import definition
from tests.test_wecom_codes_flow import Env, code_body, scan, wait_for
from tests.test_wecom_codes_flow import env as env
from tests.wecom_server import actions

PW = "s3cret-pass"


def _h(base: str, user: str) -> dict[str, str]:
    r = httpx.post(f"{base}/api/auth/login", json={"username": user, "password": PW})
    return {"Authorization": f"Bearer {r.json()['token']}"}


def _leads(base: str, h: dict[str, str], status: str = "all") -> dict[str, dict[str, Any]]:
    r = httpx.get(f"{base}/api/pool", params={"status": status, "page_size": 500}, headers=h)
    assert r.status_code == 200, r.text
    return {x["customer_id"]: x for x in r.json()["items"]}


def _customer_of(ctx: Context, id_type: str, value: str) -> str:
    rows = ctx.warehouse.fetch(
        "SELECT customer_id FROM identities WHERE brand_id = 'acme' AND id_type = ? AND id_value = ?", [id_type, value]
    )
    assert rows, (id_type, value)
    return str(rows[0][0])


def test_import_and_form_feed_the_pool(ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    brands.create_brand(ctx, "acme", "Acme")
    brands.create_user(ctx, "acme", "ops", PW, Role.ADMIN)
    brands.create_user(ctx, "acme", "g1user", PW, Role.GUIDE, guide_id="g1")
    with ctx.warehouse.transaction() as cur:  # one imported customer already has a guide on WeCom
        cur.execute("INSERT INTO guides (brand_id, guide_id, name, wecom_userid) VALUES ('acme','g1','王','u1')")
        cur.execute(
            "INSERT INTO identity_observations (brand_id, source_kind, source_ref, observed_at, identifiers, traits) "
            "VALUES ('acme', 'wecom', 'x', now(), [{'type': 'external_userid', 'value': 'wmOwned'}, "
            "{'type': 'phone', 'value': '+8613800000003'}], '{}')"
        )
        cur.execute(
            "INSERT INTO relations (brand_id, external_userid, guide_id, added_at, state) "
            "VALUES ('acme', 'wmOwned', 'g1', now(), 'active')"
        )
    csv = tmp_path / "members.csv"
    csv.write_text("手机号,姓名\n13800000001,张三\n13800000002,李四\n13800000003,王五\nnot-a-phone,坏行\n")
    monkeypatch.setenv("SIYU_DATA_DIR", str(ctx.settings.data_dir))
    with live_server(create_app(ctx, with_console=False)) as base:
        h = _h(base, "ops")
        r = CliRunner().invoke(cli, ["import", "customers", "acme", str(csv)], terminal_width=200)
        assert r.exit_code == 0, r.output
        job = httpx.get(f"{base}/api/imports", headers=h).json()
        job = job[0] if isinstance(job, list) else job["items"][0]
        assert "2 customers without a guide entered the customer pool" in job["message"], job
        leads = _leads(base, h)
        one, two, three = (_customer_of(ctx, "phone", f"+861380000000{i}") for i in (1, 2, 3))
        assert set(leads) == {one, two}  # 王五 has a guide on WeCom: not a lead; the bad row never landed
        assert {(x["source"], x["source_ref"], x["status"]) for x in leads.values()} == {("import", job["id"], "pool")}
        moves = httpx.get(f"{base}/api/pool/moves", params={"customer_id": one}, headers=h).json()
        assert [(m["action"], m["actor"]) for m in moves] == [("add", "import")]
        # the same file again: nothing new (one lead per customer)
        r = CliRunner().invoke(cli, ["import", "customers", "acme", str(csv)], terminal_width=200)
        assert r.exit_code == 0 and len(_leads(base, h)) == 2

        # a lead form: defined by a manager (a guide may not), filled in by a visitor
        g = _h(base, "g1user")
        assert httpx.put(f"{base}/api/pool/forms/spring", json={"title": "春季到店"}, headers=g).status_code == 403
        bad = httpx.put(f"{base}/api/pool/forms/Bad%20Id", json={"title": "x"}, headers=h)
        assert (bad.status_code, bad.json()["field"]) == (400, "form_id")
        made = httpx.put(
            f"{base}/api/pool/forms/spring", json={"title": "春季到店", "store_id": "s01"}, headers=h
        ).json()
        assert made["path"] == "/m/acme/form/spring"
        assert [f["form_id"] for f in httpx.get(f"{base}/api/pool/forms", headers=g).json()] == ["spring"]
        web = httpx.Client(base_url=base, timeout=30)
        assert web.get("/m/acme/form/nope").status_code == 404
        assert web.get("/m/nobrand/form/spring").status_code == 404
        page = web.get("/m/acme/form/spring")
        assert page.status_code == 200 and "春季到店" in page.text and 'name="consent"' in page.text
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token
        csrf = token.group(1)
        form = {"csrf": csrf, "name": "赵六", "phone": "138 0000 0009", "consent": "yes"}
        assert web.post("/m/acme/form/spring", data={**form, "csrf": "forged"}).status_code == 403
        for field, value in (("phone", "12345"), ("name", ""), ("consent", "")):
            r = web.post("/m/acme/form/spring", data={**form, field: value})
            assert r.status_code == 400 and f'data-field="{field}"' in r.text, (field, r.text)
        en = web.post("/m/acme/form/spring?lang=en", data={**form, "phone": "12345"})
        assert en.status_code == 400 and "give a mobile number" in en.text
        ok = web.post("/m/acme/form/spring", data=form)
        assert ok.status_code == 200 and 'data-lead="added"' in ok.text and "提交成功" in ok.text
        six = _customer_of(ctx, "phone", "+8613800000009")
        lead = _leads(base, h)[six]
        assert (lead["source"], lead["source_ref"], lead["store_id"], lead["status"]) == (
            "form",
            "spring",
            "s01",
            "pool",
        )
        name = ctx.warehouse.fetch("SELECT name FROM customers WHERE brand_id = 'acme' AND customer_id = ?", [six])
        assert name == [("赵六",)]
        again = web.post("/m/acme/form/spring", data=form)  # the same person again: still one lead
        assert 'data-lead="already in the pool"' in again.text and len(_leads(base, h)) == 3
        # an imported customer filling in the form keeps their import lead
        web.post("/m/acme/form/spring", data={**form, "phone": "13800000001"})
        assert _leads(base, h)[one]["source"] == "import"
        # someone who already has a guide is not a lead
        owned = web.post("/m/acme/form/spring", data={**form, "phone": "13800000003"})
        assert 'data-lead="has an active WeCom relation"' in owned.text and three not in _leads(base, h)
        # a deactivated form is gone
        httpx.put(f"{base}/api/pool/forms/spring", json={"title": "春季到店", "active": False}, headers=h)
        assert web.get("/m/acme/form/spring").status_code == 404


def test_campaign_helpers_enter_and_leave_on_the_wecom_add(env: Env) -> None:
    from siyu.services import rewards

    rewards.create_reward(
        env.ctx, "acme", {"id": "coupon10", "name": "10元券", "kind": "coupon", "config": {"face_value": 10}}
    )
    code = httpx.post(
        f"{env.base}/api/wecom/codes",
        json=code_body(env, guides=[{"guide_id": "g1"}], fallback_guide_id=None, group_rules=[]),
        headers=env.h,
    ).json()
    d = definition(carrier={"kind": "wecom_guide", "channel_code_id": code["id"]})
    cid = httpx.post(f"{env.base}/api/campaigns", json=d, headers=env.h).json()["id"]
    httpx.post(f"{env.base}/api/campaigns/{cid}/launch", headers=env.h).raise_for_status()
    sharer = C.join(env.ctx, "acme", cid, C.parse_identity("unionid", "oSharer00000000000000000001"), guide_id="g1")
    union = "oHelper00000000000000000001"
    h = C.help(env.ctx, "acme", cid, sharer["token"], C.parse_identity("unionid", union), device_id="d1")
    assert h["state"] == "pending_carrier"
    flush_observations(env.ctx, "acme")  # the campaigns tick: OneID for helpers
    helper = _customer_of(env.ctx, "unionid", union)

    out = scheduled.daily(env.ctx)  # the hourly guide_work.daily job feeds the pool
    assert out["pool"] == {"acme": {"campaign": 1, "settled": 0}}
    leads = _leads(env.base, env.h, "pool")
    assert (leads[helper]["source"], leads[helper]["source_ref"]) == ("campaign", cid)
    assert scheduled.daily(env.ctx)["pool"] == {}  # idempotent

    # the helper adds the guide through the campaign's code: the callback settles the lead to g1
    contact = actions.new_contact(env.srv, "李四", unionid=union)
    scan(env, code["config_id"], contact=contact)
    lead = wait_for(lambda: (x := _leads(env.base, env.h).get(helper)) and x["status"] == "owned" and x)
    assert (lead["owner_guide_id"], lead["source"], lead["source_ref"]) == ("g1", "campaign", cid)
    moves = httpx.get(f"{env.base}/api/pool/moves", params={"customer_id": helper}, headers=env.h).json()
    assert [(m["action"], m["to_guide_id"], m["actor"]) for m in moves] == [
        ("wecom_add", "g1", "wecom"),
        ("add", None, "campaign"),
    ]
    assert pool_feed.settle(env.ctx, "acme") == 0  # settled once
    # owned through WeCom: never returned to the pool for want of follow-ups
    from datetime import timedelta

    from siyu.services.guide_work import pool
    from siyu.stores.state.models import utcnow

    assert pool.return_unworked(env.ctx, utcnow() + timedelta(days=60)) == {}
    # the guide sees the customer (guide_scope) — through the API as the guide
    g = httpx.post(f"{env.base}/api/auth/login", json={"username": "wang", "password": PW}).json()["token"]
    r = httpx.get(f"{env.base}/api/customers/{helper}", headers={"Authorization": f"Bearer {g}"})
    assert r.status_code == 200, r.text
