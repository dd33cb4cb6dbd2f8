"""`siyu wecom-codes` against the local WeCom server: create (round-robin with caps), list, QR file, stats, delete,
and bad input named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from siyu.cli.main import app
from siyu.config import Settings
from siyu.services import brands
from siyu.services.context import Context
from siyu.services.wecom.config import WeComConfig, set_config
from tests.wecom_server import WeComServer, running, seed

TOKEN, KEY, CORP = "QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wwlocal0000000001"


def test_cli_create_list_qr_stats_delete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    srv = WeComServer(corpid=CORP)
    seed(srv.company, guides=3, contacts_per_guide=1)
    settings = Settings.from_env(data_dir=tmp_path / "data")
    with running(srv) as wecom:
        ctx = Context.open(settings)
        try:
            brands.create_brand(ctx, "acme", "Acme")
            set_config(ctx, "acme", WeComConfig(CORP, TOKEN, KEY, secret="contact-secret", api_base=wecom))
            with ctx.warehouse.transaction() as cur:
                cur.execute(
                    "INSERT INTO guides (brand_id, guide_id, name, wecom_userid) VALUES "
                    "('acme','g1','王','guide0001'), ('acme','g2','李','guide0002'), ('acme','g3','值班','guide0003')"
                )
                cur.execute("INSERT INTO channels VALUES ('acme','ch_mall','商场','offline')")
        finally:
            ctx.close()
        monkeypatch.setenv("SIYU_DATA_DIR", str(settings.data_dir))
        run = CliRunner()
        args = ["wecom-codes", "create", "acme", "--name", "商场快闪", "--channel", "ch_mall", "--guide", "g1:20"]
        r = run.invoke(app, [*args, "--guide", "g2", "--fallback", "g3", "--welcome", "你好{name}", "--json"])
        assert r.exit_code == 0, r.output
        code = json.loads(r.output)
        way = srv.company.contact_ways[code["config_id"]]
        assert way["user"] == ["guide0001", "guide0002"] and way["state"] == code["state"]
        assert code["guides"][0]["cap"] == 20 and code["guides"][1]["cap"] is None

        r = run.invoke(app, ["wecom-codes", "list", "acme"])
        assert r.exit_code == 0 and "channel codes" in r.output
        r = run.invoke(app, ["wecom-codes", "list", "acme", "--json"])
        assert [(c["id"], c["state"], c["users"]) for c in json.loads(r.output)] == [
            (code["id"], code["state"], ["guide0001", "guide0002"])
        ]

        png = tmp_path / "code.png"
        r = run.invoke(app, ["wecom-codes", "qr", "acme", str(code["id"]), "-o", str(png)])
        assert r.exit_code == 0 and png.read_bytes().startswith(b"\x89PNG")

        r = run.invoke(app, ["wecom-codes", "stats", "acme", str(code["id"]), "--json"])
        assert r.exit_code == 0 and json.loads(r.output)["adds"] == 0

        r = run.invoke(app, [*args[:-1], "g1:x"])
        assert r.exit_code != 0 and "GUIDE:CAP" in r.output
        r = run.invoke(app, [*args[:-2], "--guide", "g9"])
        assert r.exit_code == 2 and "g9" in r.output and "does not exist" in r.output

        r = run.invoke(app, ["wecom-codes", "delete", "acme", str(code["id"])])
        assert r.exit_code == 0 and code["config_id"] not in srv.company.contact_ways
