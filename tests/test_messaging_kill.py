"""kill -9 of the siyu process while its queue sends SMS: every acknowledged message is sent once or, if it was
in flight at the kill, kept as a dead letter marked 'interrupted' — never lost, never sent twice."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from siyu.config import Settings
from siyu.domain.models import Role
from siyu.services import brands, messaging
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.stores.state.models import utcnow
from tests.sms_server import sms_server
from tests.support.live import serve_process
from tests.support.postgres import free_port

N = 20  # the per-brand send burst


def _statuses(data: Path) -> Counter[str]:
    import sqlite3

    con = sqlite3.connect(data / "state.sqlite")
    try:
        return Counter(s for (s,) in con.execute("SELECT status FROM messaging_outbox"))
    finally:
        con.close()


@pytest.mark.slow
def test_acknowledged_sends_survive_kill_9(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with sms_server() as vendor:
        vendor.state.delay = 0.25
        ctx = Context.open(Settings(data_dir=data))
        brands.create_brand(ctx, "acme", "Acme")
        brands.create_user(ctx, "acme", "acme.ops", "password-123", Role.OPERATOR)
        admin = User(0, "acme", "t", "t", Role.ADMIN, None, "zh")
        messaging.set_provider(
            ctx,
            admin,
            "sms",
            "aliyun",
            {
                "access_key_id": "testid",
                "access_key_secret": "testsecret",
                "sign_name": "思域测试",
                "endpoint": vendor.url,
            },
        )
        ctx.close()
        port = free_port()
        proc = serve_process(data, port)
        base = f"http://127.0.0.1:{port}"
        auth = {
            "Authorization": "Bearer "
            + httpx.post(f"{base}/api/auth/login", json={"username": "acme.ops", "password": "password-123"}).json()[
                "token"
            ]
        }
        acked: list[str] = []
        for i in range(N):
            r = httpx.post(
                f"{base}/api/messaging/send",
                headers={**auth, "Idempotency-Key": f"k{i}"},
                json={
                    "channel": "sms",
                    "recipient": f"1380000{i:04d}",
                    "template": "SMS_71390007",
                    "params": {"customer": str(i)},
                },
            )
            assert r.status_code == 201
            acked.append(r.json()["id"])
        while len(vendor.state.requests) < N // 3:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)  # mid-send: one answer outstanding, the rest queued
        proc.wait()
        killed_at = _statuses(data)
        assert killed_at["sending"] <= 1 and killed_at["queued"] > 0
        proc = serve_process(data, port)  # the restarted consumer works through the durable queue
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and _statuses(data)["queued"] > 0:
                time.sleep(0.2)
            # the client retries its requests after the crash: same keys, nothing new, nothing sent again
            for i in range(3):
                r = httpx.post(
                    f"{base}/api/messaging/send",
                    headers={**auth, "Idempotency-Key": f"k{i}"},
                    json={
                        "channel": "sms",
                        "recipient": f"1380000{i:04d}",
                        "template": "SMS_71390007",
                        "params": {"customer": str(i)},
                    },
                )
                assert r.status_code == 200 and r.json()["id"] == acked[i]
        finally:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        ctx = Context.open(Settings(data_dir=data))
        try:
            recovered = messaging.process_due(ctx, utcnow() + timedelta(seconds=301))  # what the schedule does
            assert recovered == {"recovered": killed_at["sending"]}
            rows = messaging.list_messages(ctx, admin, limit=500)["items"]
        finally:
            ctx.close()
    assert sorted(m["id"] for m in rows) == sorted(acked)  # none lost
    by_out_id = Counter(s["out_id"] for s in vendor.state.sent)
    assert max(by_out_id.values()) == 1  # none sent twice
    sent = {m["id"] for m in rows if m["status"] == "sent"}
    interrupted = {m["id"] for m in rows if m["status"] == "dead"}
    assert sent | interrupted == set(acked) and len(interrupted) == killed_at["sending"]
    assert all(m["error_code"] == "interrupted" for m in rows if m["status"] == "dead")
    assert sent <= set(by_out_id)  # every 'sent' reached the vendor
