"""The audit log: each sensitive action through the real HTTP API (and the CLI) leaves one entry, readable by
admins only at GET /api/audit; entries never hold secrets."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from siyu.api.app import create_app
from siyu.domain.models import Role
from siyu.services import audit, brands
from siyu.services.context import Context
from tests.support.live import live_server
from tests.test_wecom_ops_env import CORP, KEY, TOKEN, Env, wecom_brand

PASSWORD = "s3cret-pass"


@dataclass
class Api:
    env: Env
    base: str
    admin: dict[str, str]
    operator: dict[str, str]
    guide: dict[str, str]

    def entries(self, action: str) -> list[dict[str, Any]]:
        resp = httpx.get(f"{self.base}/api/audit", params={"action": action}, headers=self.admin)
        assert resp.status_code == 200, resp.text
        items: list[dict[str, Any]] = resp.json()["items"]
        return items


def _token(base: str, user: str) -> dict[str, str]:
    resp = httpx.post(f"{base}/api/auth/login", json={"username": user, "password": PASSWORD})
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['token']}"}


@pytest.fixture
def api(ctx: Context) -> Iterator[Api]:
    with wecom_brand(ctx, guides=2, per_guide=4) as env:
        brands.create_user(ctx, "acme", "boss", PASSWORD, Role.ADMIN)
        brands.create_user(ctx, "acme", "op", PASSWORD, Role.OPERATOR)
        brands.create_user(ctx, "acme", "g1user", PASSWORD, Role.GUIDE, "g1")
        with live_server(create_app(ctx, with_console=False)) as base:
            yield Api(env, base, _token(base, "boss"), _token(base, "op"), _token(base, "g1user"))


def test_audit_is_admin_only_and_validates(api: Api) -> None:
    assert httpx.get(f"{api.base}/api/audit").status_code == 401
    for who in (api.operator, api.guide):
        resp = httpx.get(f"{api.base}/api/audit", headers=who)
        assert resp.status_code == 403 and resp.json()["field"] == "role"
    resp = httpx.get(f"{api.base}/api/audit", params={"action": "nope"}, headers=api.admin)
    assert resp.status_code == 400 and resp.json()["field"] == "action"


def test_write_key_rotation_is_audited_without_the_secret(api: Api) -> None:
    made = httpx.post(f"{api.base}/api/write-keys", json={"label": "app"}, headers=api.admin).json()
    httpx.delete(f"{api.base}/api/write-keys/{made['id']}", headers=api.admin).raise_for_status()
    [created] = api.entries("write_key.create")
    [revoked] = api.entries("write_key.revoke")
    assert created["target"] == made["id"] == revoked["target"] and created["actor"] == "boss"
    assert created["actor_role"] == "admin" and created["detail"] == {"label": "app"}
    assert made["key"] not in str(created) + str(revoked)


def test_wecom_config_and_provider_changes_are_audited_without_secrets(api: Api) -> None:
    body = {"corp_id": CORP, "token": TOKEN, "encoding_aes_key": KEY, "secret": "contact-secret"}
    body["api_base"] = api.env.wecom
    httpx.put(f"{api.base}/api/wecom/config", json=body, headers=api.admin).raise_for_status()
    [entry] = api.entries("wecom.config")
    assert entry["target"] == CORP and "secret" in entry["detail"]["fields"]
    assert "contact-secret" not in str(entry) and KEY not in str(entry) and TOKEN not in str(entry)

    settings = {"access_key_id": "AKID", "access_key_secret": "very-secret-value", "sign_name": "品牌"}
    resp = httpx.put(
        f"{api.base}/api/messaging/providers/sms", json={"provider": "aliyun", "settings": settings}, headers=api.admin
    )
    assert resp.status_code == 200, resp.text
    [entry] = api.entries("messaging.provider")
    assert entry["target"] == "sms" and entry["detail"]["provider"] == "aliyun"
    assert "very-secret-value" not in str(entry)


def test_export_mass_send_and_transfer_are_audited(api: Api) -> None:
    exts = [e for _, e in sorted(api.env.srv.company.relations)][:3]
    seg = api.env.segment(exts)
    resp = httpx.get(f"{api.base}/api/segments/{seg}/export", params={"format": "csv"}, headers=api.operator)
    assert resp.status_code == 200
    [entry] = api.entries("export")
    assert entry["target"] == f"segment:{seg}" and entry["actor"] == "op" and entry["detail"]["format"] == "csv"

    body = {"segment_id": seg, "content": "会员日", "idempotency_key": "k1"}
    first = httpx.post(f"{api.base}/api/wecom/ops/mass-sends", json=body, headers=api.operator)
    assert first.status_code == 201, first.text
    again = httpx.post(f"{api.base}/api/wecom/ops/mass-sends", json=body, headers=api.operator)
    assert again.status_code == 200  # the same send: not a second entry
    [entry] = api.entries("mass_send.create")
    assert entry["target"] == first.json()["id"] and entry["detail"]["segment_id"] == seg
    [made] = api.entries("mass_send.dispatch")  # the dispatch made with the send
    assert made["target"] == entry["target"] and made["detail"]["dispatched"] == {"created": 1}  # one guide
    httpx.post(f"{api.base}/api/wecom/ops/mass-sends/{entry['target']}/dispatch", headers=api.operator)
    again_made = api.entries("mass_send.dispatch")
    assert [e["target"] for e in again_made] == [entry["target"]] * 2 and again_made[0]["detail"]["dispatched"] == {}

    body = {"handover_guide_id": "g1", "takeover_guide_id": "g2"}
    resp = httpx.post(f"{api.base}/api/wecom/ops/transfers", json=body, headers=api.admin)
    assert resp.status_code == 201, resp.text
    [entry] = api.entries("transfer.start")
    assert entry["target"] == resp.json()["id"] and entry["detail"]["handover_guide_id"] == "g1"
    moved = {api.env.customer_of(e) for g, e in api.env.srv.company.relations if g == "guide0001"}  # which customers
    assert entry["detail"]["customers"] == len(moved) and set(entry["detail"]["customer_ids"]) == moved


def test_oneid_split_is_audited(api: Api) -> None:
    ext = sorted(api.env.srv.company.relations)[0][1]
    cid = api.env.customer_of(ext)
    found = httpx.get(
        f"{api.base}/api/oneid/lookup", params={"type": "external_userid", "value": ext}, headers=api.admin
    ).json()
    other = [i for i in found["identifiers"] if i["type"] != "external_userid"]
    assert other, found  # a synced contact also has its unionid (or a phone)
    ident = {"type": other[0]["type"], "value": other[0]["value"]}
    body = {"customer_id": cid, "identifiers": [ident], "reason": "wrong merge"}
    resp = httpx.post(f"{api.base}/api/oneid/split", json=body, headers=api.admin)
    assert resp.status_code == 200, resp.text
    [entry] = api.entries("oneid.split")
    assert entry["target"] == cid and entry["detail"]["new_customer_id"] == resp.json()["new_customer_id"]
    assert entry["detail"]["reason"] == "wrong merge"


def test_user_creation_from_the_cli_is_audited(ctx: Context) -> None:
    brands.create_brand(ctx, "acme", "Acme")
    audit.record(ctx, "acme", "cli", "user.create", "newbie", {"role": "guide", "guide_id": "g9"})
    [entry] = audit.entries(ctx, "acme", "user.create")
    assert entry["actor"] == "cli" and entry["detail"]["role"] == "guide"
    with pytest.raises(ValueError, match="unknown audit action"):
        audit.record(ctx, "acme", "cli", "made.up")


def test_exports_hash_phones_by_default_and_clear_text_is_admin_only_and_audited(api: Api) -> None:
    import io

    import pandas as pd

    exts = [e for _, e in sorted(api.env.srv.company.relations)][:2]
    seg = api.env.segment(exts)
    cids = [api.env.customer_of(e) for e in exts]
    with api.env.ctx.warehouse.transaction() as cur:
        cur.execute(
            "UPDATE customers SET phone = '+8613800138000' WHERE brand_id = 'acme' AND customer_id = ?", [cids[0]]
        )
    url = f"{api.base}/api/segments/{seg}/export"
    hashed = pd.read_csv(io.BytesIO(httpx.get(url, headers=api.operator).content), encoding="utf-8-sig", dtype=str)
    phones = dict(zip(hashed["customer_id"], hashed["phone"], strict=True))
    assert "+8613800138000" not in phones.values()
    import hashlib

    assert phones[cids[0]] == hashlib.sha256(b"+8613800138000").hexdigest()
    refused = httpx.get(url, params={"pii": "clear"}, headers=api.operator)
    assert refused.status_code == 403 and refused.json()["field"] == "pii"
    clear = pd.read_csv(io.BytesIO(httpx.get(url, params={"pii": "clear"}, headers=api.admin).content), dtype=str)
    assert dict(zip(clear["customer_id"], clear["phone"], strict=True))[cids[0]] == "'+8613800138000"  # + quoted
    assert [e["detail"]["pii"] for e in api.entries("export")] == ["clear", "hashed"]  # newest first
    assert [e["actor"] for e in api.entries("export")] == ["boss", "op"]


def test_cli_export_mass_send_and_transfer_are_audited(
    api: Api, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from typer.testing import CliRunner

    from siyu.cli.main import app as cli

    monkeypatch.setenv("SIYU_DATA_DIR", str(api.env.ctx.settings.data_dir))
    runner = CliRunner()
    exts = [e for _, e in sorted(api.env.srv.company.relations)][:2]
    seg = api.env.segment(exts)
    out = runner.invoke(cli, ["segments", "export", "acme", seg, "-o", str(tmp_path / "m.csv")])
    assert out.exit_code == 0, out.output
    [entry] = api.entries("export")
    assert (entry["actor"], entry["target"], entry["detail"]["via"]) == ("cli", f"segment:{seg}", "cli")

    out = runner.invoke(cli, ["wecom-ops", "mass-send", "acme", seg, "--content", "会员日", "--key", "cli-1"])
    assert out.exit_code == 0, out.output
    [made] = api.entries("mass_send.create")
    assert made["actor"] == "cli" and made["detail"]["segment_id"] == seg
    assert [e["target"] for e in api.entries("mass_send.dispatch")] == [made["target"]]

    out = runner.invoke(cli, ["wecom-ops", "transfer", "acme", "g1", "g2"])
    assert out.exit_code == 0, out.output
    [moved] = api.entries("transfer.start")
    assert moved["actor"] == "cli" and moved["detail"]["takeover_guide_id"] == "g2" and moved["detail"]["customers"] > 0
