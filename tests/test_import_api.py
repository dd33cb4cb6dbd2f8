"""/api/imports over real HTTP: upload → Huey job in the app's embedded consumer → status, errors, list."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from siyu.api.app import create_app
from siyu.cli.main import app as cli_app
from siyu.config import Settings
from siyu.domain.models import Role
from siyu.services import brands
from siyu.services.context import Context
from tests.support.live import live_server

PASSWORD = "s3cret-pass"
CSV = "手机号,姓名,城市\n13800138000,张三,上海\n13900139000,李四,北京\n999,王五,杭州\n"


def _login(base: str, username: str) -> dict[str, str]:
    r = httpx.post(f"{base}/api/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


@pytest.fixture
def users(ctx: Context) -> None:
    brands.create_brand(ctx, "acme", "Acme")
    brands.create_user(ctx, "acme", "op", PASSWORD, Role.OPERATOR)
    brands.create_user(ctx, "acme", "g1", PASSWORD, Role.GUIDE, guide_id="G1")
    brands.create_brand(ctx, "other", "Other")
    brands.create_user(ctx, "other", "op2", PASSWORD, Role.OPERATOR)


def test_upload_runs_on_huey_and_reports(ctx: Context, users: None, monkeypatch: pytest.MonkeyPatch) -> None:
    with live_server(create_app(ctx, with_console=False)) as base:
        auth = _login(base, "op")
        files = {"file": ("客户.csv", CSV.encode("gbk"), "text/csv")}
        pv = httpx.post(f"{base}/api/imports/preview", data={"kind": "customers"}, files=files, headers=auth)
        assert pv.status_code == 200, pv.text
        assert pv.json()["mapping"]["phone"] == "手机号" and len(pv.json()["rows"]) == 3

        r = httpx.post(
            f"{base}/api/imports",
            data={"kind": "customers", "mapping": json.dumps({"city": None})},
            files=files,
            headers=auth,
        )
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        deadline = time.monotonic() + 60
        while True:
            job = httpx.get(f"{base}/api/imports/{job_id}", headers=auth).json()
            if job["status"] in ("done", "failed") or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert job["status"] == "done", job
        assert (job["rows_ok"], job["rows_failed"], job["created_by"]) == (2, 1, "op")
        assert "city" not in job["mapping"]
        report = httpx.get(f"{base}/api/imports/{job_id}/errors", headers=auth)
        assert report.status_code == 200 and report.headers["content-type"].startswith("text/csv")
        lines = report.content.decode("utf-8-sig").splitlines()
        assert lines[0] == "row,column,value,reason,fix" and lines[1].startswith("4,手机号,999,")
        listed = httpx.get(f"{base}/api/imports", headers=auth).json()["items"]
        assert [j["id"] for j in listed] == [job_id]

        # Other brands and guide users cannot see it; bad input is a clear 4xx.
        assert httpx.get(f"{base}/api/imports/{job_id}", headers=_login(base, "op2")).status_code == 404
        assert httpx.get(f"{base}/api/imports", headers=_login(base, "g1")).status_code == 403
        assert httpx.get(f"{base}/api/imports").status_code == 401
        bad = httpx.post(f"{base}/api/imports", data={"kind": "pets"}, files=files, headers=auth)
        assert bad.status_code == 400 and bad.json()["field"] == "kind"
        bad = httpx.post(f"{base}/api/imports", data={"kind": "orders"}, files=files, headers=auth)
        assert bad.status_code == 400 and bad.json()["field"] == "order_id" and "手机号" in bad.json()["error"]

        monkeypatch.setenv("SIYU_MAX_UPLOAD_MB", "0.001")  # ~1 KB
        big = {"file": ("big.csv", ("手机号\n" + "13800138000\n" * 500).encode(), "text/csv")}
        r = httpx.post(f"{base}/api/imports", data={"kind": "customers"}, files=big, headers=auth)
        assert r.status_code == 413 and "MB" in r.json()["error"]


def test_cli_import_and_map(tmp_path: Path) -> None:
    env = {"SIYU_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"}
    path = tmp_path / "导购.csv"
    path.write_text("工号,姓名,门店,企微账号,备用账号\nG1,小美,ST1,xiaomei,xm2\nG2,,ST1,x,y\n", encoding="utf-8")
    runner = CliRunner()
    c = Context.open(Settings(data_dir=tmp_path / "data"))
    brands.create_brand(c, "acme", "Acme")
    c.close()
    out = runner.invoke(cli_app, ["import", "guides", "acme", str(path), "--map", "wecom_userid=备用账号"], env=env)
    assert out.exit_code == 0, out.output
    assert "done" in out.output and "wecom_userid←备用账号" in out.output
    assert (tmp_path / "导购.csv.errors.csv").exists()
    bad = runner.invoke(cli_app, ["import", "guides", "acme", str(path), "--map", "nope=工号"], env=env)
    assert bad.exit_code == 2 and "no field 'nope'" in bad.output
    listed = runner.invoke(cli_app, ["import", "jobs", "acme"], env=env)
    assert listed.exit_code == 0 and "guides" in listed.output


def test_cli_explains_a_busy_warehouse(tmp_path: Path) -> None:
    data = tmp_path / "data"
    c = Context.open(Settings(data_dir=data))
    brands.create_brand(c, "acme", "Acme")
    c.close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); print('ready', flush=True); time.sleep(60)",
            str(data / "warehouse.duckdb"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        path = tmp_path / "s.csv"
        path.write_text("门店编号,门店名称\nST1,静安店\n", encoding="utf-8")
        siyu = str(Path(sys.executable).parent / "siyu")  # a real process: DuckDB locks are per process
        env = {**os.environ, "SIYU_DATA_DIR": str(data), "COLUMNS": "200"}
        out = subprocess.run(
            [siyu, "import", "stores", "acme", str(path)], env=env, capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 2, out.stdout + out.stderr
        assert "POST /api/imports" in out.stderr
    finally:
        holder.kill()
        holder.wait(timeout=10)
