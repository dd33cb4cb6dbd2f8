"""WeCom operations through the HTTP API and the CLI: roles (a guide sees only their own tasks and recipients and
changes nothing), clear 400s naming the field, and the siyu wecom-ops commands."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from siyu.api.app import create_app
from siyu.cli.main import app as cli
from siyu.config import Settings
from siyu.domain.models import Role
from siyu.services import brands
from siyu.services.context import Context
from tests.support.live import live_server
from tests.test_wecom_ops_env import wecom_brand
from tests.wecom_server import actions


def login(base: str, username: str, password: str) -> dict[str, str]:
    r = httpx.post(f"{base}/api/auth/login", json={"username": username, "password": password})
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_api_roles_and_errors(ctx: Context) -> None:
    with wecom_brand(ctx, guides=2, per_guide=4) as env, live_server(create_app(ctx, with_console=False)) as base:
        brands.create_user(ctx, "acme", "admin", "s3cret-pass", Role.ADMIN)
        brands.create_user(ctx, "acme", "g1", "s3cret-pass", Role.GUIDE, guide_id="g1")
        admin, guide = login(base, "admin", "s3cret-pass"), login(base, "g1", "s3cret-pass")
        api = f"{base}/api/wecom/ops"
        exts = [e for _, e in sorted(env.srv.company.relations)]
        seg = env.segment(exts)  # 4 customers of g1, 4 of g2

        r = httpx.post(f"{api}/mass-sends", json={"segment_id": seg, "content": "好" * 1334}, headers=admin)
        assert r.status_code == 400 and r.json()["field"] == "content" and "4000" in r.json()["error"]
        body = {"segment_id": seg, "content": "周末上新", "idempotency_key": "api-1"}
        assert httpx.post(f"{api}/mass-sends", json=body, headers=guide).status_code == 403
        r = httpx.post(f"{api}/mass-sends", json=body, headers=admin)
        assert r.status_code == 201 and r.json()["totals"] == {"queued": 8}
        sid = r.json()["id"]
        assert httpx.post(f"{api}/mass-sends", json=body, headers=admin).status_code == 200  # same key
        mine = httpx.get(f"{api}/mass-sends/{sid}", headers=guide).json()
        assert [t["guide_id"] for t in mine["tasks"]] == ["g1"] and mine["totals"] == {"queued": 4}
        assert [s["recipients"] for s in httpx.get(f"{api}/mass-sends", headers=guide).json()] == [4]
        actions.confirm_mass_send(env.srv, mine["tasks"][0]["msgid"])
        r = httpx.post(f"{api}/mass-sends/{sid}/refresh", headers=admin)
        assert r.json()["totals"] == {"queued": 4, "sent": 4}

        assert (
            httpx.post(
                f"{api}/transfers", json={"handover_guide_id": "g1", "takeover_guide_id": "g9"}, headers=admin
            ).json()["field"]
            == "takeover_guide_id"
        )
        r = httpx.post(f"{api}/transfers", json={"handover_guide_id": "g2", "takeover_guide_id": "g1"}, headers=admin)
        assert r.status_code == 201 and r.json()["totals"]["waiting"] == 4
        assert [t["id"] for t in httpx.get(f"{api}/transfers", headers=guide).json()] == [r.json()["id"]]
        assert httpx.post(f"{api}/transfers/{r.json()['id']}/refresh", headers=guide).status_code == 403

        r = httpx.post(f"{api}/tags", json={"name": "x" * 31, "group_name": "g"}, headers=admin)
        assert r.status_code == 400 and r.json()["field"] == "name"
        assert httpx.post(f"{api}/tags", json={"name": "VIP", "group_name": "等级"}, headers=guide).status_code == 403
        tag = httpx.post(f"{api}/tags", json={"name": "VIP", "group_name": "等级"}, headers=admin).json()
        listed = httpx.get(f"{api}/tags", headers=guide).json()
        assert listed["total"] == 1 and listed["groups"][0]["tags"][0]["name"] == "VIP"
        # a guide marks their own customer, not someone else's
        r = httpx.post(f"{api}/tags/mark", json={"external_userid": exts[0], "add": [tag["id"]]}, headers=guide)
        assert r.status_code == 200 and tag["id"] in env.srv.company.relations[("guide0001", exts[0])].tag_ids
        r = httpx.post(f"{api}/tags/mark", json={"external_userid": exts[5], "add": [tag["id"]]}, headers=guide)
        assert r.status_code == 404
        assert httpx.get(f"{api}/tags").status_code == 401


def test_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    ctx = Context.open(settings)
    monkeypatch.setenv("SIYU_DATA_DIR", str(settings.data_dir))
    try:
        with wecom_brand(ctx, guides=2, per_guide=3) as env:
            seg = env.segment([e for _, e in sorted(env.srv.company.relations)][:4])
            ctx.close()
            run = CliRunner().invoke
            r = run(
                cli, ["wecom-ops", "mass-send", "acme", seg, "--content", "你好", "--key", "c1"], terminal_width=200
            )
            assert r.exit_code == 0, r.output
            assert "queued 4" in r.output and r.output.count("msg0000") == 2  # one task per guide
            r = run(
                cli, ["wecom-ops", "mass-send", "acme", seg, "--content", "再来", "--key", "c2"], terminal_width=200
            )
            assert r.exit_code == 0 and "capped 4" in r.output
            r = run(cli, ["wecom-ops", "tag-rule-add", "acme", seg, "--tag-name", "CLI标签", "--group", "CLI"])
            assert r.exit_code == 0, r.output
            r = run(cli, ["wecom-ops", "tag-rule-refresh", "acme", "1"])
            assert r.exit_code == 0 and "marked 4, removed 0" in r.output
            r = run(cli, ["wecom-ops", "transfer", "acme", "g1", "g2"], terminal_width=200)
            assert r.exit_code == 0 and "waiting 3" in r.output
            r = run(cli, ["wecom-ops", "transfer", "acme", "g1", "g1"])
            assert r.exit_code == 2 and "must differ" in r.output
    finally:
        ctx.close()
