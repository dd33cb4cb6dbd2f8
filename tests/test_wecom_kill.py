"""kill -9 of the siyu process while it processes callbacks: every acknowledged callback is applied exactly once."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from siyu.config import Settings
from siyu.services import brands
from siyu.services.context import Context
from siyu.services.wecom.config import WeComConfig, set_config
from tests.support.live import serve_process
from tests.support.postgres import free_port
from tests.wecom_server import WeComServer, running, seed

TOKEN, KEY, CORP = "QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wwlocal0000000001"
N = 240


def add_event(ext: str, i: int) -> dict[str, object]:
    return {
        "ToUserName": CORP,
        "FromUserName": "sys",
        "CreateTime": int(time.time()),
        "MsgType": "event",
        "Event": "change_external_contact",
        "ChangeType": "add_external_contact",
        "UserID": f"guide{1 + i % 4:04d}",
        "ExternalUserID": ext,
        "State": "kill",
    }


@pytest.mark.slow
def test_acknowledged_callbacks_survive_kill_9(tmp_path: Path) -> None:
    srv = WeComServer()
    seed(srv.company, guides=4, contacts_per_guide=N // 4)
    pairs = sorted(srv.company.relations)  # (userid, external_userid): WeCom knows them all
    data = tmp_path / "data"
    with running(srv) as wecom:
        ctx = Context.open(Settings(data_dir=data))
        brands.create_brand(ctx, "acme", "Acme")
        set_config(ctx, "acme", WeComConfig(CORP, TOKEN, KEY, secret="contact-secret", api_base=wecom))
        with ctx.warehouse.transaction() as cur:
            cur.execute(
                "INSERT INTO guides (brand_id, guide_id, name, wecom_userid) "
                "SELECT 'acme', printf('g%d', i), 'x', printf('guide%04d', i) FROM range(1, 5) t(i)"
            )
        ctx.close()
        port = free_port()
        emitter = srv.connect_callbacks(f"http://127.0.0.1:{port}/api/wecom/callback/acme", TOKEN, KEY)
        events = [dict(add_event(ext, int(u[5:]) - 1)) for u, ext in pairs]
        proc = serve_process(data, port)
        acked: list[int] = []

        def send() -> None:
            for i, fields in enumerate(events):
                try:
                    if emitter.send(fields, str(int(time.time()))).text == "success":
                        acked.append(i)
                except httpx.HTTPError:
                    return

        sender = threading.Thread(target=send)
        sender.start()
        while len(acked) < N // 2:
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)  # mid-way: callbacks stored, some processing, more in flight
        proc.wait()
        sender.join()
        assert N // 2 <= len(acked) < N
        proc = serve_process(data, port)
        try:
            for i, fields in enumerate(events):  # WeCom retries whatever was not acknowledged
                if i not in acked:
                    assert emitter.send(fields, str(int(time.time()))).text == "success"
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                done = httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200 and _all_done(data, port)
                if done:
                    break
                time.sleep(0.5)
        finally:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
    ctx = Context.open(Settings(data_dir=data))
    try:
        from siyu.stores.state.wecom_models import WeComCallbackRow

        with ctx.sessions() as s:
            rows = list(s.query(WeComCallbackRow))
        assert len(rows) == N and {r.status for r in rows} == {"done"}
        rel = ctx.warehouse.fetch("SELECT count(*), count(*) FILTER (WHERE state = 'active') FROM relations")
        assert rel == [(N, N)]
        obs = ctx.warehouse.fetch(
            "SELECT count(*), count(DISTINCT source_ref) FROM identity_observations WHERE source_kind = 'wecom'"
        )
        assert obs == [(N, N)]  # one observation per callback: none lost, none applied twice
    finally:
        ctx.close()


def _all_done(data: Path, port: int) -> bool:
    import sqlite3

    con = sqlite3.connect(data / "state.sqlite")
    try:
        ((n, done),) = con.execute("SELECT count(*), sum(status = 'done') FROM wecom_callbacks").fetchall()
    finally:
        con.close()
    return bool(n == N and done == N)
