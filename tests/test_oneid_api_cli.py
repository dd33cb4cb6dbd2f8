"""OneID through the real HTTP API (/api/oneid) and the `siyu oneid` CLI."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
import pytest
from typer.testing import CliRunner

from siyu.api.app import create_app
from siyu.cli.main import app as cli
from siyu.config import Settings
from siyu.domain.models import Identity, Role
from siyu.services import brands, oneid
from siyu.services.context import Context
from tests.support.live import live_server

B = "acme"
PASSWORD = "s3cret-pass"
T0 = datetime(2026, 1, 1, 9, 0)
PHONE = Identity("phone", "+8613800138000")
MAIL = Identity("email", "wrong@x.cn")


def seed(ctx: Context) -> str:
    """One customer wrongly merged with an e-mail, plus a conflict (a second unionid on the same phone)."""
    brands.create_brand(ctx, B, "Acme")
    brands.create_user(ctx, B, "admin", PASSWORD, Role.ADMIN)
    brands.create_user(ctx, B, "guide1", PASSWORD, Role.GUIDE, guide_id="g1")
    with ctx.warehouse.transaction() as tx:
        oneid.add_observations(
            tx,
            B,
            [
                oneid.Observation("crm", "r1", T0, (Identity("unionid", "oU1"), PHONE), {"name": "李雷"}),
                oneid.Observation("shop", "r2", T0 + timedelta(minutes=1), (PHONE, MAIL)),
                oneid.Observation("wecom", "r3", T0 + timedelta(minutes=2), (Identity("unionid", "oU2"), PHONE)),
            ],
        )
    oneid.resolve_pending(ctx, B)
    cid = oneid.customer_of(ctx, B, PHONE)
    assert cid is not None
    return cid


@pytest.fixture
def served(ctx: Context) -> Iterator[tuple[str, str]]:
    cid = seed(ctx)
    with live_server(create_app(ctx, with_console=False)) as base:
        yield base, cid


def _auth(base: str, username: str) -> dict[str, str]:
    r = httpx.post(f"{base}/api/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_api_conflicts_lookup_and_split(served: tuple[str, str]) -> None:
    base, cid = served
    assert httpx.get(f"{base}/api/oneid/conflicts").status_code == 401
    guide = _auth(base, "guide1")
    assert httpx.get(f"{base}/api/oneid/conflicts", headers=guide).status_code == 403
    h = _auth(base, "admin")
    r = httpx.get(f"{base}/api/oneid/conflicts", headers=h)
    assert r.status_code == 200
    body = r.json()
    assert body["count"] == 1 and body["conflicts"][0]["reason"] == "max_per_person:unionid:1"

    r = httpx.get(f"{base}/api/oneid/lookup", params={"type": "phone", "value": "138-0013-8000"}, headers=h)
    assert r.status_code == 200 and r.json()["customer_id"] == cid
    assert {i["type"] for i in r.json()["identifiers"]} == {"unionid", "phone", "email"}

    bad = {"customer_id": cid, "identifiers": [{"type": "email", "value": "not-an-email"}], "reason": "x"}
    r = httpx.post(f"{base}/api/oneid/split", json=bad, headers=h)
    assert r.status_code == 400 and r.json()["field"] == "identifiers[0]"
    split = {"customer_id": cid, "identifiers": [{"type": "email", "value": "WRONG@x.cn"}], "reason": "typo"}
    assert httpx.post(f"{base}/api/oneid/split", json=split, headers=guide).status_code == 403
    r = httpx.post(f"{base}/api/oneid/split", json=split, headers=h)
    assert r.status_code == 200, r.text
    new_id = r.json()["new_customer_id"]
    assert new_id != cid and [i["value"] for i in r.json()["identifiers"]] == ["wrong@x.cn"]
    r = httpx.get(f"{base}/api/oneid/lookup", params={"type": "email", "value": "wrong@x.cn"}, headers=h)
    assert r.json()["customer_id"] == new_id
    # splitting again names an identifier the customer no longer has
    r = httpx.post(f"{base}/api/oneid/split", json=split, headers=h)
    assert r.status_code == 400 and "not an identifier" in r.json()["error"]


runner = CliRunner()


def test_cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIYU_DATA_DIR", str(settings.data_dir))
    ctx = Context.open(settings)
    try:
        cid = seed(ctx)
    finally:
        ctx.close()
    r = runner.invoke(cli, ["oneid", "rebuild", B], terminal_width=200)
    assert r.exit_code == 0, r.output
    assert "rebuild acme: 3 observations, 4 identifiers, 2 customers" in r.output
    r = runner.invoke(cli, ["oneid", "conflicts", B], terminal_width=200)
    assert r.exit_code == 0 and "max_per_person:unionid:1" in r.output and "unionid:oU2" in r.output
    r = runner.invoke(cli, ["oneid", "show", B, "phone:13800138000"], terminal_width=200)
    assert r.exit_code == 0 and cid in r.output and "wrong@x.cn" in r.output
    r = runner.invoke(cli, ["oneid", "split", B, cid, "-i", "email:wrong@x.cn", "--reason", "typo"], terminal_width=200)
    assert r.exit_code == 0, r.output
    assert "into new customer" in r.output
    r = runner.invoke(cli, ["oneid", "show", B, "email:wrong@x.cn"], terminal_width=200)
    assert r.exit_code == 0 and cid not in r.output.split("\n")[0]
    r = runner.invoke(cli, ["oneid", "split", B, cid, "-i", "bogus", "--reason", "x"])
    assert r.exit_code == 2 and "type:value" in r.output
    r = runner.invoke(cli, ["oneid", "show", "nobrand", "phone:13800138000"])
    assert r.exit_code == 2 and "does not exist" in r.output
    r = runner.invoke(cli, ["oneid", "resolve", B])
    assert r.exit_code == 0 and "incremental acme: 0 observations" in r.output
