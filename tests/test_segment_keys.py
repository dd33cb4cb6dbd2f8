"""Write keys: service rules and the `siyu keys` CLI (real SQLite state, real DuckDB)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from siyu.cli.main import app
from siyu.services import write_keys
from siyu.services.brands import create_brand
from siyu.services.context import Context
from siyu.services.errors import NotFound, Unauthorized
from siyu.stores.state.models import WriteKeyRow


def test_keys_are_hashed_listed_and_revocable(any_ctx: Context) -> None:
    create_brand(any_ctx, "acme", "Acme")
    key, secret = write_keys.create_key(any_ctx, "acme", "web")
    with any_ctx.sessions() as s:
        row = s.get(WriteKeyRow, key.id)
        assert row is not None and secret not in (row.key_hash, row.key_prefix) and row.key_hash != secret
    assert write_keys.authenticate_key(any_ctx, secret).brand_id == "acme"
    assert [k.label for k in write_keys.list_keys(any_ctx, "acme")] == ["web"]
    write_keys.revoke_key(any_ctx, key.id)
    with pytest.raises(Unauthorized, match="revoked"):
        write_keys.authenticate_key(any_ctx, secret)
    with pytest.raises(NotFound):
        write_keys.revoke_key(any_ctx, "wkid_nope")
    with pytest.raises(NotFound):
        write_keys.create_key(any_ctx, "no-brand")


def test_cli_create_list_revoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIYU_DATA_DIR", str(tmp_path / "data"))
    from siyu.config import Settings

    ctx = Context.open(Settings.from_env())
    create_brand(ctx, "acme", "Acme")
    ctx.close()
    runner = CliRunner()
    out = runner.invoke(app, ["keys", "create", "acme", "--label", "shop"])
    assert out.exit_code == 0, out.output
    secret = re.search(r"wk_\S+", out.output)
    key_id = re.search(r"wkid_[0-9a-f]+", out.output)
    assert secret and key_id
    listed = runner.invoke(app, ["keys", "list", "acme"])
    assert listed.exit_code == 0 and key_id.group(0) in listed.output and secret.group(0) not in listed.output
    assert runner.invoke(app, ["keys", "revoke", key_id.group(0)]).exit_code == 0
    ctx = Context.open(Settings.from_env())
    try:
        with pytest.raises(Unauthorized):
            write_keys.authenticate_key(ctx, secret.group(0))
    finally:
        ctx.close()
    bad = runner.invoke(app, ["keys", "revoke", "wkid_missing"])
    assert bad.exit_code == 2 and "does not exist" in bad.output


def test_admin_api_manages_keys_of_its_own_brand(ctx: Context) -> None:
    import httpx

    from siyu.api.app import create_app
    from siyu.domain.models import Role
    from siyu.services.brands import create_user
    from tests.support.live import live_server

    create_brand(ctx, "acme", "Acme")
    create_brand(ctx, "other", "Other")
    create_user(ctx, "acme", "boss", "password-1", Role.ADMIN)
    create_user(ctx, "acme", "op", "password-2", Role.OPERATOR)
    foreign, _ = write_keys.create_key(ctx, "other", "theirs")
    with live_server(create_app(ctx, with_console=False)) as base:
        admin = httpx.Client(base_url=base, auth=("boss", "password-1"))
        assert httpx.get(f"{base}/api/write-keys").status_code == 401
        assert httpx.get(f"{base}/api/write-keys", auth=("op", "password-2")).status_code == 403
        r = admin.post("/api/write-keys", json={"label": "app"})
        assert r.status_code == 201
        created = r.json()
        assert created["key"].startswith("wk_") and created["brand_id"] == "acme"
        track = {"userId": "u", "event": "E"}
        assert httpx.post(f"{base}/v1/track", json=track, auth=(created["key"], "")).status_code == 200
        listed = admin.get("/api/write-keys").json()
        assert [k["id"] for k in listed] == [created["id"]] and "key" not in listed[0]
        assert admin.delete(f"/api/write-keys/{foreign.id}").status_code == 404  # another brand's key
        assert admin.delete(f"/api/write-keys/{created['id']}").json()["revoked_at"]
        assert httpx.post(f"{base}/v1/track", json=track, auth=(created["key"], "")).status_code == 401
        admin.close()
