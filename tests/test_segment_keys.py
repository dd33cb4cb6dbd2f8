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
