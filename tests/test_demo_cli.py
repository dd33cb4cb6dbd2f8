"""`siyu demo seed` and `siyu demo up` as a user runs them (real process, real HTTP)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from typer.testing import CliRunner

from siyu.cli.main import app
from tests.support.postgres import free_port

SIYU = str(Path(sys.executable).parent / "siyu")


def test_seed_command_seeds_once_then_says_so(tmp_path: Path) -> None:
    env = {"SIYU_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"}
    runner = CliRunner()
    first = runner.invoke(app, ["demo", "seed", "--customers", "150", "--seed", "5"], env=env)
    assert first.exit_code == 0, first.output
    assert "orders" in first.output and "seeded" in first.output
    second = runner.invoke(app, ["demo", "seed", "--customers", "150", "--seed", "5"], env=env)
    assert second.exit_code == 0 and "already seeded" in second.output
    check = runner.invoke(app, ["demo", "check"], env=env)
    assert check.exit_code == 0 and "lead_in_success" in check.output
    bad = runner.invoke(app, ["demo", "seed", "--brand", "x2", "--customers", "5"], env=env)
    assert bad.exit_code == 2 and "customers must be at least 100" in bad.output


def test_demo_up_seeds_prints_logins_and_serves(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "SIYU_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"}
    proc = subprocess.Popen(
        [SIYU, "demo", "up", "--port", str(port), "--customers", "200"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline, ok = time.time() + 90, False
        while time.time() < deadline and proc.poll() is None:
            try:
                ok = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok:
                break
            time.sleep(0.3)
        assert ok, "demo up did not start serving"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert f"http://127.0.0.1:{port}" in out
    assert "admin" in out and "siyu-admin" in out and "operator" in out and "guide1" in out
