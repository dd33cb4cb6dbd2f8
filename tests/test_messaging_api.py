"""/api/messaging over real HTTP on a seeded demo brand, and `siyu messaging`: guides send only to their own
customers and see only their own messages, cannot configure providers; secrets never come back; idempotency
keys; the marketing cap; limits (429, sizes); dead letters and re-send from the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from siyu.api.app import create_app
from siyu.cli.main import app as cli_app
from siyu.domain.models import Role
from siyu.domain.pii import mask_phone
from siyu.services import brands, messaging
from siyu.services.brands import User
from siyu.services.context import Context
from tests.sms_server import sms_server
from tests.support.live import api_login, live_server
from tests.support.stores import open_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Context]:
    from siyu.services.demo import DemoConfig

    c = open_demo(tmp_path_factory.mktemp("messaging") / "data", DemoConfig(customers=300))
    yield c
    c.close()


def _customers(base: str, h: dict[str, str]) -> list[dict[str, Any]]:
    return httpx.get(f"{base}/api/customers", headers=h, params={"page_size": 100}).json()["items"]


def test_messaging_api(demo: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIYU_HUEY_CONSUMER", "off")  # deliveries are driven by process_due below
    with sms_server() as vendor, live_server(create_app(demo, with_console=False)) as base:
        admin = api_login(base, "admin", "siyu-admin")
        guide = api_login(base, "guide1", "siyu-guide")
        api = f"{base}/api/messaging"
        assert httpx.get(f"{api}/outbox").status_code == 401

        # providers: guides may not; secrets are write-only
        body = {
            "provider": "aliyun",
            "settings": {
                "access_key_id": "testid",
                "access_key_secret": "testsecret",
                "sign_name": "思域测试",
                "endpoint": vendor.url,
            },
        }
        r = httpx.put(f"{api}/providers/sms", headers=guide, json=body)
        assert r.status_code == 403 and r.json()["field"] == "role"
        assert httpx.get(f"{api}/providers", headers=guide).status_code == 403
        r = httpx.put(f"{api}/providers/sms", headers=admin, json=body)
        assert r.status_code == 200 and r.json()["access_key_secret_set"] is True and "testsecret" not in r.text
        r = httpx.put(f"{api}/providers/sms", headers=admin, json={"provider": "twilio", "settings": {}})
        assert r.status_code == 400 and r.json()["field"] == "provider"
        shown = httpx.get(f"{api}/providers", headers=admin)
        assert "testsecret" not in shown.text and shown.json()["marketing_daily_cap"] == 1

        # a guide sends to their own customer (the phone on file); not to another guide's customer
        mine = next(c for c in _customers(base, guide) if c["phone"])
        assert "****" in mine["phone"]  # lists show phones masked; the guide reveals their own customer's (audited)
        shown_to_guide = httpx.post(f"{base}/api/customers/{mine['customer_id']}/reveal", headers=guide, json={})
        assert shown_to_guide.status_code == 200, shown_to_guide.text
        mine = {**mine, "phone": shown_to_guide.json()["profile"]["phone"]}
        theirs = next(
            c
            for c in _customers(base, admin)
            if c["phone"] and c["customer_id"] not in {x["customer_id"] for x in _customers(base, guide)}
        )
        sms = {"channel": "sms", "template": "SMS_71390007", "params": {"customer": "会员"}, "purpose": "marketing"}
        r = httpx.post(f"{api}/send", headers=guide, json={**sms, "customer_id": theirs["customer_id"]})
        assert r.status_code == 404 and r.json()["field"] == "customer_id"
        r = httpx.post(f"{api}/send", headers=guide, json={**sms, "recipient": "13800138000"})
        assert r.status_code == 400 and r.json()["field"] == "customer_id"
        r = httpx.post(
            f"{api}/send", headers=guide, json={**sms, "customer_id": mine["customer_id"], "recipient": "13800138000"}
        )
        assert r.status_code == 403 and r.json()["field"] == "recipient"
        key = {"Idempotency-Key": "welcome-" + mine["customer_id"]}
        r = httpx.post(f"{api}/send", headers={**guide, **key}, json={**sms, "customer_id": mine["customer_id"]})
        assert (
            r.status_code == 201
            and r.json()["recipient"] == mask_phone(mine["phone"])
            and r.json()["status"] == "queued"
        )
        first = r.json()["id"]
        again = httpx.post(f"{api}/send", headers={**guide, **key}, json={**sms, "customer_id": mine["customer_id"]})
        assert again.status_code == 200 and again.json()["id"] == first
        # the marketing cap: a second marketing message to the same customer today is refused
        capped = httpx.post(f"{api}/send", headers=admin, json={**sms, "customer_id": mine["customer_id"]})
        assert capped.status_code == 409 and "1/day" in capped.json()["error"]
        # an operator's message to another customer, then deliveries
        r = httpx.post(
            f"{api}/send", headers=admin, json={**sms, "customer_id": theirs["customer_id"], "template": "SMS_404"}
        )
        assert r.status_code == 201
        bad_id = r.json()["id"]
        from siyu.services import messaging

        assert messaging.process_due(demo) == {"recovered": 0, "sent": 1, "dead": 1}
        assert [s["phone"] for s in vendor.state.sent] == [mine["phone"].removeprefix("+86")]

        # listing: a guide sees only their own; filters; dead letters; re-send is for operators
        g = httpx.get(f"{api}/outbox", headers=guide).json()
        assert [m["id"] for m in g["items"]] == [first] and g["items"][0]["status"] == "sent"
        a = httpx.get(f"{api}/outbox", headers=admin, params={"status": "dead"}).json()
        assert [m["id"] for m in a["items"]] == [bad_id] and a["by_status"]["sent"] == 1
        assert a["items"][0]["error_code"] == "isv.SMS_TEMPLATE_ILLEGAL" and "模板不合法" in a["items"][0]["error"]
        assert httpx.get(f"{api}/dead-letters", headers=guide).json()["items"] == []
        assert httpx.get(f"{api}/outbox/{bad_id}", headers=guide).status_code == 404
        assert httpx.post(f"{api}/outbox/{bad_id}/resend", headers=guide).status_code == 403
        r = httpx.post(f"{api}/outbox/{bad_id}/resend", headers=admin)
        assert r.status_code == 200 and r.json()["status"] == "queued"
        assert httpx.post(f"{api}/outbox/{bad_id}/resend", headers=admin).status_code == 409

        # limits
        r = httpx.get(f"{api}/outbox", headers=admin, params={"limit": 501})
        assert r.status_code == 400 and r.json()["field"] == "limit"
        r = httpx.post(f"{api}/send", headers=admin, json={**sms, "recipient": "13800138000", "template": "x" * 65})
        assert r.status_code == 422
        r = httpx.post(f"{api}/send", headers=admin, json={"channel": "fax", "recipient": "1"})
        assert r.status_code == 400 and r.json()["field"] == "channel"
        from concurrent.futures import ThreadPoolExecutor

        with httpx.Client(headers=guide) as client, ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(lambda _i: client.get(f"{api}/outbox", params={"limit": 1}).status_code, range(120)))
        assert 429 in codes and codes.count(200) >= 40  # burst 40, then 20/s per user
        r = httpx.get(f"{api}/outbox", headers=guide)
        assert r.status_code == 200 or "retry in" in r.json()["error"]


def test_cli_send_outbox_dead_letters_resend(demo: Context, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from siyu.cli.common import console

    monkeypatch.setenv("SIYU_DATA_DIR", str(demo.settings.data_dir))
    monkeypatch.setattr(console, "width", 220)  # whole ids in the tables
    runner = CliRunner()
    with sms_server() as vendor:
        from siyu.domain.models import Role
        from siyu.services import messaging
        from siyu.services.brands import User

        messaging.set_provider(
            demo,
            User(0, "demo", "t", "t", Role.ADMIN, None, "zh"),
            "sms",
            "aliyun",
            {
                "access_key_id": "testid",
                "access_key_secret": "testsecret",
                "sign_name": "思域测试",
                "endpoint": vendor.url,
            },
        )
        out = runner.invoke(
            cli_app,
            [
                "messaging",
                "send",
                "demo",
                "--channel",
                "sms",
                "--to",
                "+86 139 0013 9000",
                "--template",
                "SMS_71390007",
                "--param",
                "customer=王五",
                "--now",
            ],
        )
        assert out.exit_code == 0, out.output
        assert "sent" in out.output and vendor.state.sent[-1]["params"] == {"customer": "王五"}
        out = runner.invoke(
            cli_app,
            [
                "messaging",
                "send",
                "demo",
                "--channel",
                "sms",
                "--to",
                "13900139001",
                "--template",
                "SMS_100001",
                "--param",
                "name=x",
                "--now",
            ],
        )
        assert out.exit_code == 1 and "isv.TEMPLATE_MISSING_PARAMETERS" in out.output
        dead = [
            m
            for m in messaging.list_messages(demo, User(0, "demo", "t", "t", Role.ADMIN, None, "zh"), "dead")["items"]
            if m["recipient"] == "+8613900139001"
        ]
        out = runner.invoke(cli_app, ["messaging", "dead-letters", "demo"])
        assert out.exit_code == 0 and dead[0]["id"] in out.output and "TEMPLATE_MISSING" in out.output
        out = runner.invoke(cli_app, ["messaging", "outbox", "demo", "--status", "sent"])
        assert out.exit_code == 0 and "+8613900139000" in out.output
        out = runner.invoke(cli_app, ["messaging", "resend", "demo", dead[0]["id"], "--now"])
        assert out.exit_code == 1 and out.exception is not None and isinstance(out.exception, SystemExit)
        assert "status: dead" in out.output and "attempts: 1" in out.output  # still failing: dead again
        out = runner.invoke(
            cli_app, ["messaging", "send", "demo", "--channel", "sms", "--to", "12", "--template", "SMS_71390007"]
        )
        assert out.exit_code == 2 and "not a" in out.output
        out = runner.invoke(cli_app, ["messaging", "providers", "demo"])
        assert out.exit_code == 0 and "testsecret" not in out.output and "access_key_secret_set" in out.output


def test_outbox_recipients_masked_unless_revealed(any_ctx: Context) -> None:
    """Outbox answers mask recipients (phones and emails); ``pii=clear`` shows them to an admin and is audited,
    and is refused to an operator while the brand has not allowed operators to reveal."""
    ctx = any_ctx
    brands.create_brand(ctx, "mask", "Mask")
    brands.create_user(ctx, "mask", "boss", "boss-pass-1", Role.ADMIN)
    brands.create_user(ctx, "mask", "ops", "ops-pass-12", Role.OPERATOR)
    boss = User(0, "mask", "boss", "boss", Role.ADMIN, None, "zh")
    sms = {"access_key_id": "id", "access_key_secret": "secret", "sign_name": "思域", "endpoint": "http://127.0.0.1:9"}
    messaging.set_provider(ctx, boss, "sms", "aliyun", sms)  # never reached: queue=False
    smtp = {"host": "127.0.0.1", "port": 9, "security": "none", "from_address": "crm@brand.cn", "password": "pw"}
    messaging.set_provider(ctx, boss, "email", "smtp", smtp)
    for to in ("13800138000", "li@brand.cn"):
        channel = "email" if "@" in to else "sms"
        extra = {"subject": "会员", "text": "您好"} if channel == "email" else {"template": "SMS_71390007"}
        messaging.send(ctx, boss, messaging.SendRequest(channel=channel, recipient=to, **extra), queue=False)
    with live_server(create_app(ctx, with_console=False)) as base:
        api = f"{base}/api/messaging"
        masked = httpx.get(f"{api}/outbox", auth=("boss", "boss-pass-1")).json()["items"]
        assert sorted(m["recipient"] for m in masked) == ["138****8000", "l***@brand.cn"]
        one = httpx.get(f"{api}/outbox/{masked[0]['id']}", auth=("boss", "boss-pass-1")).json()
        assert "*" in one["recipient"]
        clear = httpx.get(f"{api}/outbox", params={"pii": "clear"}, auth=("boss", "boss-pass-1")).json()["items"]
        assert sorted(m["recipient"] for m in clear) == ["+8613800138000", "li@brand.cn"]
        refused = httpx.get(f"{api}/outbox", params={"pii": "clear"}, auth=("ops", "ops-pass-12"))
        assert refused.status_code == 403 and refused.json()["field"] == "role"
        log = httpx.get(f"{base}/api/audit", params={"action": "pii.reveal"}, auth=("boss", "boss-pass-1")).json()
        assert [e["target"] for e in log["items"]] == ["messaging.outbox"]
