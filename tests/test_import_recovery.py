"""An import job left 'running' by a process that died is queued again when the next consumer starts."""

from __future__ import annotations

import time
from pathlib import Path

from siyu.api.app import create_app
from siyu.services import brands
from siyu.services.context import Context
from siyu.services.imports import get_job
from siyu.services.imports.runner import _update, create_job
from tests.support.live import live_server


def test_interrupted_job_runs_again_on_startup(ctx: Context, tmp_path: Path) -> None:
    brands.create_brand(ctx, "acme", "Acme")
    path = tmp_path / "customers.csv"
    path.write_text("手机号,姓名\n13800138000,张三\n13900139000,李四\n", encoding="utf-8")
    job_id = create_job(ctx, "acme", "customers", path)
    _update(ctx, job_id, status="running")  # what a process killed mid-import leaves behind
    untouched = create_job(ctx, "acme", "customers", path)
    _update(ctx, untouched, status="failed", message="bad file")

    with live_server(create_app(ctx, with_console=False)):
        deadline = time.monotonic() + 60
        while get_job(ctx, job_id).status != "done" and time.monotonic() < deadline:
            time.sleep(0.2)
    job = get_job(ctx, job_id)
    assert (job.status, job.rows_ok) == ("done", 2), job.message
    assert ctx.warehouse.fetch("SELECT count(*) FROM customers WHERE brand_id = 'acme'")[0][0] == 2
    assert get_job(ctx, untouched).status == "failed"  # only interrupted jobs are retried
