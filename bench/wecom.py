"""WeCom: callbacks verified+decrypted per second, callbacks received (verify, decrypt, parse, store) per second,
and a full contact sync of 100,000 contacts from the local WeCom server run as its own process.

Goal (issue 6): limited only by WeCom's rate limit — the calls paced at the published 10,000/min (6 s for the
1,001 calls of 100,000 contacts) — with our own overhead < 10 % of the time.  The local server's answering time
is reported apart from the client's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

TOKEN, KEY, CORP = "QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wwlocal0000000001"
ROOT = Path(__file__).resolve().parents[1]


def _event(i: int) -> dict[str, Any]:
    return {
        "ToUserName": CORP,
        "FromUserName": "sys",
        "CreateTime": 1_700_000_000 + i,
        "MsgType": "event",
        "Event": "change_external_contact",
        "ChangeType": "add_external_contact",
        "UserID": f"guide{i % 50:04d}",
        "ExternalUserID": f"wmBench{i:025d}",
        "State": "ch_store",
        "WelcomeCode": "W" * 43,
    }


def crypto_rate(n: int = 20_000) -> float:
    from tests.wecom_server.callbacks import Emitter

    from siyu.connectors.wecom.crypto import WXBizMsgCrypt

    em = Emitter("x", TOKEN, KEY, CORP)
    envs = [em.envelope(_event(i), "1700000000") for i in range(n)]
    crypt = WXBizMsgCrypt(TOKEN, KEY, CORP)
    t0 = time.perf_counter()
    for body, q in envs:
        crypt.decrypt_msg(body, q["msg_signature"], q["timestamp"], q["nonce"])
    return n / (time.perf_counter() - t0)


def receive_rate(n: int = 2_000) -> float:
    from tests.wecom_server.callbacks import Emitter

    from siyu.config import Settings
    from siyu.services import brands
    from siyu.services.context import Context
    from siyu.services.rate_limit import TokenBucket
    from siyu.services.wecom import callbacks
    from siyu.services.wecom.config import WeComConfig, set_config

    with tempfile.TemporaryDirectory() as tmp:
        ctx = Context.open(Settings(data_dir=Path(tmp) / "data"))
        try:
            brands.create_brand(ctx, "bench", "Bench")
            set_config(ctx, "bench", WeComConfig(CORP, TOKEN, KEY))
            ctx.extras["wecom_callback_bucket"] = TokenBucket(1e9, 10**9)  # measure the work, not the limit
            em = Emitter("x", TOKEN, KEY, CORP)
            ts = str(int(time.time()))
            envs = [em.envelope(_event(i), ts) for i in range(n)]
            t0 = time.perf_counter()
            for body, q in envs:
                callbacks.receive(
                    ctx, "bench", q["msg_signature"], q["timestamp"], q["nonce"], body.encode(), enqueue=False
                )
            return n / (time.perf_counter() - t0)
        finally:
            ctx.close()


def process_rate(n: int = 300) -> float:
    """Add callbacks applied per second (each: `get` from the local server, relation, tags, OneID observation)."""
    from tests.wecom_server import Emitter, WeComServer, running, seed

    from siyu.config import Settings
    from siyu.services import brands
    from siyu.services.context import Context
    from siyu.services.rate_limit import TokenBucket
    from siyu.services.wecom import callbacks
    from siyu.services.wecom.config import WeComConfig, set_config
    from siyu.services.wecom.processing import process_pending

    srv = WeComServer()
    seed(srv.company, 4, n // 4)
    with running(srv) as base, tempfile.TemporaryDirectory() as tmp:
        ctx = Context.open(Settings(data_dir=Path(tmp) / "data"))
        try:
            brands.create_brand(ctx, "bench", "Bench")
            set_config(ctx, "bench", WeComConfig(CORP, TOKEN, KEY, secret="contact-secret", api_base=base))
            ctx.extras["wecom_callback_bucket"] = TokenBucket(1e9, 10**9)
            with ctx.warehouse.transaction() as cur:
                cur.execute(
                    "INSERT INTO guides (brand_id, guide_id, name, wecom_userid) "
                    "SELECT 'bench', printf('g%d', i), 'x', printf('guide%04d', i) FROM range(1, 5) t(i)"
                )
            em, ts = Emitter("x", TOKEN, KEY, CORP), str(int(time.time()))
            for u, ext in sorted(srv.company.relations):
                ev = {**_event(0), "CreateTime": int(ts), "UserID": u, "ExternalUserID": ext}
                body, q = em.envelope(ev, ts)
                callbacks.receive(ctx, "bench", q["msg_signature"], ts, q["nonce"], body.encode(), enqueue=False)
            t0 = time.perf_counter()
            done = process_pending(ctx, "bench")
            return done / (time.perf_counter() - t0)
        finally:
            ctx.close()


def sync_100k(guides: int = 200, per_guide: int = 500) -> dict[str, Any]:
    from tests.support.postgres import free_port

    from siyu.config import Settings
    from siyu.services import brands
    from siyu.services.context import Context
    from siyu.services.wecom.config import WeComConfig, set_config
    from siyu.services.wecom.sync import sync_contacts

    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.wecom_server",
            "--port",
            str(port),
            "--guides",
            str(guides),
            "--contacts",
            str(per_guide),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                httpx.get(base + "/_sim/stats", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        with tempfile.TemporaryDirectory() as tmp:
            ctx = Context.open(Settings(data_dir=Path(tmp) / "data"))
            try:
                brands.create_brand(ctx, "bench", "Bench")
                set_config(ctx, "bench", WeComConfig(CORP, TOKEN, KEY, secret="contact-secret", api_base=base))
                with ctx.warehouse.transaction() as cur:
                    cur.execute(
                        "INSERT INTO guides (brand_id, guide_id, name, wecom_userid) SELECT 'bench', "
                        f"printf('g%04d', i), 'x', printf('guide%04d', i) FROM range(1, {guides + 1}) t(i)"
                    )
                t0 = time.perf_counter()
                stats = sync_contacts(ctx, "bench")
                total = time.perf_counter() - t0
                oneid_seconds = total - stats.fetch_seconds - stats.write_seconds
            finally:
                ctx.close()
        busy = float(httpx.get(base + "/_sim/stats").json()["busy_seconds"])
    finally:
        server.terminate()
        server.wait(timeout=30)
    own_fetch = stats.fetch_seconds - busy
    pace = stats.api_calls / 10_000 * 60  # the calls at exactly WeCom's published 10,000/min
    return {
        "contacts": stats.records,
        "api_calls": stats.api_calls,
        "total_seconds": round(total, 2),
        "fetch_seconds": stats.fetch_seconds,
        "local_server_answering_seconds": round(busy, 2),
        "client_fetch_overhead_seconds": round(own_fetch, 2),
        "write_seconds": stats.write_seconds,
        "oneid_seconds": round(oneid_seconds, 2),
        "rate_wait_seconds": stats.rate_wait_seconds,
        "wecom_rate_limit_pace_seconds": round(pace, 2),
        "overhead_share_beyond_rate_limit": round(max(0.0, total - pace) / total, 3),
        "goal_met": (total - pace) / total < 0.10,
    }


def run() -> dict[str, Any]:
    """All WeCom figures (about a minute)."""
    return {
        "callbacks_verified_decrypted_per_s": round(crypto_rate()),
        "callbacks_received_stored_per_s": round(receive_rate()),
        "add_callbacks_applied_per_s": round(process_rate(), 1),
        "sync_100k": sync_100k(),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
