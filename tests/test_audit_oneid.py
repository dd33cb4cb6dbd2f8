"""OneID in the audit log and the split of identifiers OneID holds no evidence for: customer merges (incremental and
rebuild) leave one entry per run naming the customers, splits from the HTTP API and the CLI leave one entry each,
and a split of an identifier without observations answers 400 naming ``identifiers`` (it was a 500)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from siyu.api.app import create_app
from siyu.cli.main import app as cli
from siyu.config import Settings
from siyu.domain.identity import normalize
from siyu.domain.models import Role
from siyu.services import brands, oneid
from siyu.services.context import Context
from siyu.stores.state.models import BrandRow
from tests.support.live import live_server

PASSWORD = "s3cret-pass"
BRAND = "acme"


@dataclass
class Api:
    ctx: Context
    base: str
    admin: dict[str, str]

    def entries(self, action: str) -> list[dict[str, Any]]:
        resp = httpx.get(f"{self.base}/api/audit", params={"action": action}, headers=self.admin)
        assert resp.status_code == 200, resp.text
        items: list[dict[str, Any]] = resp.json()["items"]
        return items

    def split(self, cid: str, idents: list[tuple[str, str]]) -> httpx.Response:
        body = {"customer_id": cid, "identifiers": [{"type": t, "value": v} for t, v in idents], "reason": "wrong"}
        return httpx.post(f"{self.base}/api/oneid/split", json=body, headers=self.admin)


def observe(ctx: Context, ref: str, *idents: tuple[str, str]) -> None:
    """Record one observation of the identifiers together and resolve it."""
    ob = oneid.Observation("test", ref, datetime(2025, 1, 1), tuple(normalize(t, v) for t, v in idents))
    with ctx.warehouse.transaction() as tx:
        oneid.add_observations(tx, BRAND, [ob])
    oneid.resolve_pending(ctx, BRAND)


def customer(ctx: Context, t: str, v: str) -> str:
    cid = oneid.customer_of(ctx, BRAND, normalize(t, v))
    assert cid is not None
    return cid


@pytest.fixture
def api(ctx: Context) -> Iterator[Api]:
    brands.create_brand(ctx, BRAND, "Acme")
    brands.create_user(ctx, BRAND, "boss", PASSWORD, Role.ADMIN)
    with live_server(create_app(ctx, with_console=False)) as base:
        resp = httpx.post(f"{base}/api/auth/login", json={"username": "boss", "password": PASSWORD})
        yield Api(ctx, base, {"Authorization": f"Bearer {resp.json()['token']}"})


def test_customer_merges_are_audited_with_both_customers(api: Api) -> None:
    observe(api.ctx, "o1", ("phone", "13800138000"))
    observe(api.ctx, "o2", ("unionid", "oU1"))
    a, b = customer(api.ctx, "phone", "13800138000"), customer(api.ctx, "unionid", "oU1")
    assert a != b and api.entries("oneid.merge") == []  # new people are not merges
    observe(api.ctx, "o3", ("phone", "13800138000"), ("unionid", "oU1"))  # the same person: a merge
    survivor = customer(api.ctx, "unionid", "oU1")
    [entry] = api.entries("oneid.merge")
    assert entry["actor"] == "oneid" and entry["detail"]["mode"] == "incremental" and entry["detail"]["merges"] == 1
    [[kept, absorbed, rule]] = entry["detail"]["pairs"]
    assert {kept, absorbed} == {a, b} and kept == survivor and rule.startswith("link:")
    oneid.rebuild(api.ctx, BRAND)  # recomputes the same partition: no customers meet again, no new entry
    assert len(api.entries("oneid.merge")) == 1


def test_split_of_an_identifier_without_observations_is_a_400(api: Api) -> None:
    observe(api.ctx, "o1", ("phone", "13800138000"), ("email", "z@qq.com"))
    cid = customer(api.ctx, "phone", "13800138000")
    with api.ctx.warehouse.transaction() as tx:  # an identifier no observation shows (e.g. from an older rebuild)
        tx.execute(
            "INSERT INTO identities (brand_id, id_type, id_value, customer_id) VALUES (?, 'member_id', 'M1', ?)",
            [BRAND, cid],
        )
    resp = api.split(cid, [("member_id", "M1")])
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["field"] == "identifiers" and "member_id:M1" in body["error"] and "siyu oneid" in body["error"]

    # the brand's policy now gives phones and emails trust 0: no observation links them any more
    with api.ctx.sessions() as s, s.begin():
        row = s.get(BrandRow, BRAND)
        assert row is not None
        row.settings = {"oneid": {"types": {"phone": {"trust": 0}}}}
    resp = api.split(cid, [("phone", "13800138000")])
    assert resp.status_code == 400 and resp.json()["field"] == "identifiers", resp.text
    resp = api.split(cid, [("email", "z@qq.com")])  # only the phone would stay, and it links nothing
    assert resp.status_code == 400 and resp.json()["field"] == "identifiers", resp.text
    assert api.entries("oneid.split") == []  # nothing changed, nothing audited
    assert customer(api.ctx, "email", "z@qq.com") == cid


def test_splits_from_http_and_cli_are_audited(api: Api, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    observe(api.ctx, "o1", ("phone", "13800138000"), ("unionid", "oU1"), ("email", "z@qq.com"))
    cid = customer(api.ctx, "phone", "13800138000")
    resp = api.split(cid, [("email", "z@qq.com")])
    assert resp.status_code == 200, resp.text
    [entry] = api.entries("oneid.split")
    assert entry["actor"] == "boss" and entry["actor_role"] == "admin" and entry["target"] == cid
    assert entry["detail"]["new_customer_id"] == resp.json()["new_customer_id"] != cid
    assert entry["detail"]["identifiers"] == ["email:z@qq.com"] and entry["detail"]["reason"] == "wrong"

    monkeypatch.setenv("SIYU_DATA_DIR", str(settings.data_dir))
    args = ["oneid", "split", BRAND, cid, "-i", "phone:13800138000", "-r", "two people, one phone"]
    out = CliRunner().invoke(cli, args)
    assert out.exit_code == 0, out.output
    newest = api.entries("oneid.split")[0]
    assert newest["actor"] == "cli" and newest["target"] == cid
    assert newest["detail"]["identifiers"] == ["phone:+8613800138000"]
    assert newest["detail"]["new_customer_id"] == customer(api.ctx, "phone", "13800138000")
