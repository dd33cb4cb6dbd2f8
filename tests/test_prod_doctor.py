"""`siyu doctor` names the components the settings select and checks that each answers; `siyu migrate`."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.postgres import free_port
from tests.support.prod import SIYU, fresh_postgres
from tests.support.redis import RedisServer


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "COLUMNS": "250", **env}
    return subprocess.run([SIYU, *args], env=full, capture_output=True, text=True, timeout=120)


@pytest.mark.slow  # six `siyu` processes: ~60 s on 2 shared cores
def test_doctor_on_postgres_and_redis(tmp_path: Path, pg_url: str, redis: RedisServer) -> None:
    env = {"SIYU_DATA_DIR": str(tmp_path / "data"), "SIYU_DATABASE_URL": fresh_postgres(pg_url)}
    before = _run(["doctor"], {**env, "SIYU_REDIS_URL": redis.url})
    assert before.returncode == 1 and before.stdout.count("run `siyu migrate`") == 2, before.stdout
    migrated = _run(["migrate"], env)
    assert migrated.returncode == 0 and "is at revision" in migrated.stdout, migrated.stderr
    assert "warehouse" in migrated.stdout and "up to date" in migrated.stdout
    ok = _run(["doctor"], {**env, "SIYU_REDIS_URL": redis.url})
    assert ok.returncode == 0, ok.stdout + ok.stderr
    lines = {line.split("│")[1].strip(): line for line in ok.stdout.splitlines() if line.count("│") > 3}
    assert "postgresql" in lines["state"] and "ok" in lines["state"]
    assert "redis" in lines["queue"] and "AOF on" in lines["queue"]
    assert "duckdb" in lines["warehouse"]
    # a Redis that does not answer fails the doctor (exit 1), and its password is never printed
    down = _run(["doctor"], {**env, "SIYU_REDIS_URL": f"redis://:s3cret-pw@127.0.0.1:{free_port()}/0"})
    assert down.returncode == 1 and "FAIL" in down.stdout and "Connection refused" in down.stdout
    assert "s3cret-pw" not in down.stdout + down.stderr and "***" in down.stdout


def test_doctor_embedded_defaults(tmp_path: Path) -> None:
    env = {"SIYU_DATA_DIR": str(tmp_path / "data"), "SIYU_DATABASE_URL": "", "SIYU_REDIS_URL": "", "SIYU_HUEY_URL": ""}
    assert _run(["init"], env).returncode == 0
    ok = _run(["doctor"], env)
    assert ok.returncode == 0, ok.stdout
    assert "sqlite" in ok.stdout and "huey.sqlite" in ok.stdout and "duckdb" in ok.stdout
