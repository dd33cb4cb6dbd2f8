"""Import jobs run in the background through Huey: SQLite queue (embedded default) and a real Redis server."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from huey import RedisHuey, SqliteHuey

from siyu.config import Settings
from siyu.services import brands
from siyu.services.context import Context
from siyu.services.imports import ImportJobView, get_job, submit_import
from siyu.workers import get_huey, start_consumer
from tests.support.postgres import free_port


def _wait(ctx: Context, job_id: str, timeout: float = 60) -> ImportJobView:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = get_job(ctx, job_id)
        if job.status in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {get_job(ctx, job_id)}")


def _customers_file(tmp_path: Path) -> Path:
    path = tmp_path / "客户.csv"
    pd.DataFrame({"手机号": ["13800138000", "13900139000", "bad"], "姓名": ["张三", "李四", "王五"]}).to_csv(
        path, index=False
    )
    return path


def _roundtrip(ctx: Context, tmp_path: Path) -> None:
    brands.create_brand(ctx, "acme", "Acme")
    consumer = start_consumer(ctx)
    try:
        job_id = submit_import(ctx, "acme", "customers", _customers_file(tmp_path), created_by="op")
        job = _wait(ctx, job_id)
    finally:
        consumer.stop(graceful=True)
    assert job.status == "done", job.message
    assert (job.rows_ok, job.rows_failed) == (2, 1)
    assert ctx.warehouse.fetch("SELECT count(*) FROM identity_observations WHERE brand_id = 'acme'") == [(2,)]


def test_import_runs_on_sqlite_huey(ctx: Context, tmp_path: Path) -> None:
    huey = get_huey(ctx.settings)
    assert isinstance(huey, SqliteHuey)
    assert get_huey(ctx.settings) is huey
    _roundtrip(ctx, tmp_path)
    assert (ctx.settings.data_dir / "huey.sqlite").exists()


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A real redis-server on a random port, without persistence."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.05)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=10)


def test_import_runs_on_redis_huey(settings: Settings, tmp_path: Path, redis_url: str) -> None:
    ctx = Context.open(replace(settings, huey_url=redis_url))
    try:
        assert isinstance(get_huey(ctx.settings), RedisHuey)
        _roundtrip(ctx, tmp_path)
    finally:
        ctx.close()


def test_failed_job_is_recorded(ctx: Context, tmp_path: Path) -> None:
    brands.create_brand(ctx, "acme", "Acme")
    path = _customers_file(tmp_path)
    job_id = submit_import(ctx, "acme", "customers", path)  # queued; no consumer runs yet
    assert get_job(ctx, job_id).status == "pending"
    path.unlink()  # the file disappears before a worker reads it
    consumer = start_consumer(ctx)
    try:
        job = _wait(ctx, job_id)
    finally:
        consumer.stop(graceful=True)
    assert job.status == "failed"
    assert "does not exist" in job.message and job.finished_at is not None


def test_api_lifespan_runs_the_consumer_unless_off(
    ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from siyu.api.app import create_app
    from tests.support.live import live_server

    brands.create_brand(ctx, "acme", "Acme")
    monkeypatch.setenv("SIYU_HUEY_CONSUMER", "off")
    with live_server(create_app(ctx, with_console=False)):
        job_id = submit_import(ctx, "acme", "customers", _customers_file(tmp_path))
        time.sleep(1.5)
        assert get_job(ctx, job_id).status == "pending"  # nobody consumes
    monkeypatch.delenv("SIYU_HUEY_CONSUMER")
    with live_server(create_app(ctx, with_console=False)):
        assert _wait(ctx, job_id).status == "done"  # the queued job runs once the app consumes


def record_brand(ctx: Context, brand_id: str, name: str = "") -> None:
    """A background function for the test below (module-level so the worker can import it)."""
    brands.create_brand(ctx, brand_id, name or brand_id)


def test_enqueue_call_runs_any_function_with_the_context(ctx: Context) -> None:
    from siyu.workers import enqueue_call

    with pytest.raises(ValueError):
        enqueue_call(ctx, "no-colon")
    consumer = start_consumer(ctx)
    try:
        enqueue_call(ctx, "tests.test_workers:record_brand", "bg", name="后台")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not [b for b in brands.list_brands(ctx) if b.id == "bg"]:
            time.sleep(0.05)
    finally:
        consumer.stop(graceful=True)
    assert [b.name for b in brands.list_brands(ctx) if b.id == "bg"] == ["后台"]
