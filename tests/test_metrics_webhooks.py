"""Anomaly webhooks against a real local HTTP server: HMAC-SHA256 signature, retries with backoff, the delivery
log, and the daily check (service and `siyu metrics anomalies --notify`) on a brand with a known spike."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from typer.testing import CliRunner

from siyu.cli.main import app as cli_app
from siyu.connectors.webhooks import SIGNATURE_HEADER, deliver, sign, verify
from siyu.services import brand_webhooks, brands
from siyu.services.context import Context
from siyu.services.errors import SiyuError
from siyu.services.metrics import anomalies
from tests.support.postgres import free_port

SECRET = "s3cret-for-tests-0123456789"


class Receiver:
    """A webhook receiver on 127.0.0.1: answers with the queued statuses (then 200) and keeps every request."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append(({k: v for k, v in self.headers.items()}, body))
                status = outer.statuses.pop(0) if outer.statuses else 200
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"nope")

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/siyu"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def test_signed_post_retried_with_backoff(receiver: Receiver) -> None:
    receiver.statuses = [503, 502]
    waits: list[float] = []
    result = deliver(receiver.url, {"hello": "世界"}, SECRET, "anomalies", retries=3, backoff=0.25, sleep=waits.append)
    assert result.ok and result.attempts == 3 and result.status_code == 200
    assert waits == [0.25, 0.5]  # exponential backoff between attempts
    assert len(receiver.requests) == 3
    ids = {h["X-Siyu-Delivery"] for h, _ in receiver.requests}
    assert len(ids) == 1  # the same delivery id on every retry
    headers, body = receiver.requests[-1]
    assert json.loads(body) == {"hello": "世界"}
    assert verify(body, SECRET, headers[SIGNATURE_HEADER])
    assert headers[SIGNATURE_HEADER] == "sha256=" + __import__("hmac").new(SECRET.encode(), body, "sha256").hexdigest()
    assert not verify(body, "another-secret-0123456789", headers[SIGNATURE_HEADER])
    assert not verify(body + b" ", SECRET, headers[SIGNATURE_HEADER])


def test_client_errors_are_final_and_unreachable_hosts_retried(receiver: Receiver) -> None:
    receiver.statuses = [400]
    r = deliver(receiver.url, {"a": 1}, SECRET, "anomalies", retries=3, sleep=lambda _s: None)
    assert not r.ok and r.attempts == 1 and r.status_code == 400 and "400" in (r.error or "")
    waits: list[float] = []
    dead = f"http://127.0.0.1:{free_port()}/nobody"
    r = deliver(dead, {"a": 1}, SECRET, "anomalies", retries=2, backoff=0.01, timeout=1, sleep=waits.append)
    assert not r.ok and r.attempts == 3 and r.status_code is None and r.error
    assert waits == [0.01, 0.02]


def test_brand_settings_and_delivery_log(ctx: Context, receiver: Receiver) -> None:
    brands.create_brand(ctx, "hooks", "Hooks")
    with pytest.raises(SiyuError) as err:
        brand_webhooks.set_webhook(ctx, "hooks", "anomalies", "ftp://example.com/x")
    assert err.value.field == "url"
    hook = brand_webhooks.set_webhook(ctx, "hooks", "anomalies", receiver.url)
    assert len(hook.secret) == 64 and brand_webhooks.get_webhook(ctx, "hooks", "anomalies") == hook
    receiver.statuses = [500]
    result = brand_webhooks.send(ctx, "hooks", "anomalies", {"x": 1}, backoff=0.01)
    assert result is not None and result.ok and result.attempts == 2
    headers, body = receiver.requests[-1]
    assert verify(body, hook.secret, headers[SIGNATURE_HEADER]) and sign(body, hook.secret) == headers[SIGNATURE_HEADER]
    log = brand_webhooks.deliveries(ctx, "hooks")
    assert log[0]["ok"] and log[0]["attempts"] == 2 and log[0]["status_code"] == 200 and log[0]["url"] == receiver.url
    brand_webhooks.remove_webhook(ctx, "hooks", "anomalies")
    assert brand_webhooks.get_webhook(ctx, "hooks", "anomalies") is None
    assert brand_webhooks.send(ctx, "hooks", "anomalies", {"x": 1}) is None


def _seed_spike(ctx: Context, brand: str, spike_day: date, normal: int = 10, spike: int = 60) -> None:
    """Relations added every day for 10 weeks (``normal`` a day), ``spike`` on ``spike_day``."""
    rows = []
    day = spike_day - timedelta(days=70)
    while day <= spike_day:
        n = spike if day == spike_day else normal
        for i in range(n):
            at = datetime(day.year, day.month, day.day, 10) + timedelta(minutes=i)
            rows.append((brand, f"wm_{day.isoformat()}_{i}", "g1", at, "1", "active", "ch_x"))
        day += timedelta(days=1)
    with ctx.warehouse.transaction() as cur:
        cur.execute("INSERT INTO channels (brand_id, channel_id, name, kind) VALUES (?, 'ch_x', 'X', 'other')", [brand])
        cur.executemany(
            "INSERT INTO relations (brand_id, external_userid, guide_id, added_at, add_way, state, channel_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


def test_daily_check_notifies_the_spike(ctx: Context, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    brands.create_brand(ctx, "spiky", "Spiky")
    spike_day = date(2026, 10, 20)
    _seed_spike(ctx, "spiky", spike_day)
    hook = brand_webhooks.set_webhook(ctx, "spiky", "anomalies", receiver.url, SECRET)

    quiet = anomalies.check_and_notify(ctx, "spiky", spike_day - timedelta(days=1))
    assert quiet["anomalies"] == [] and quiet["delivery"] is None and receiver.requests == []

    result = anomalies.check_and_notify(ctx, "spiky", spike_day, backoff=0.01)
    steps = {(a["step"], a["channel_id"]) for a in result["anomalies"]}
    assert steps == {("new_contacts", None), ("new_contacts", "ch_x")}
    a = next(x for x in result["anomalies"] if x["channel_id"] is None)
    # history: 8 same weekdays of 10 → median 10, MAD 0 → scale floor max(1, 5% × 10) = 1 → z = 50
    assert a["actual"] == 60 and a["median"] == 10 and a["z"] == 50 and a["direction"] == "above"
    assert a["off_by"] == pytest.approx(60 - 13)
    assert result["delivery"]["ok"]
    headers, body = receiver.requests[-1]
    assert verify(body, hook.secret, headers[SIGNATURE_HEADER]) and headers["X-Siyu-Event"] == "anomalies"
    payload = json.loads(body)
    assert payload["brand_id"] == "spiky" and payload["day"] == "2026-10-20" and len(payload["anomalies"]) == 2

    # the cron entry point: siyu metrics anomalies --brand spiky --day ... --notify
    monkeypatch.setenv("SIYU_DATA_DIR", str(ctx.settings.data_dir))
    receiver.statuses = [503]
    out = CliRunner().invoke(cli_app, ["metrics", "anomalies", "--brand", "spiky", "--day", "2026-10-20", "--notify"])
    assert out.exit_code == 0, out.output
    assert "anomalies · spiky · 2026-10-20" in out.output and "new_co" in out.output
    assert len(receiver.requests) == 3  # one from the service call, two attempts (503 then 200) from the CLI
    log = brand_webhooks.deliveries(ctx, "spiky")
    assert [d["attempts"] for d in log] == [2, 1] and all(d["ok"] for d in log)
    brand_webhooks.set_webhook(ctx, "spiky", "anomalies", f"http://127.0.0.1:{free_port()}/gone", SECRET)
    out = CliRunner().invoke(cli_app, ["metrics", "anomalies", "--brand", "spiky", "--day", "2026-10-20", "--notify"])
    assert out.exit_code == 1 and "delivery failed" in out.output


def test_daily_job_is_scheduled_and_checks_brands_with_a_webhook(ctx: Context, receiver: Receiver) -> None:
    import importlib

    from siyu.workers.schedule import SCHEDULES

    job = next(s for s in SCHEDULES if s.name == "metrics.anomalies")
    module, _, func = job.target.partition(":")
    assert job.every_minutes == 1440 and getattr(importlib.import_module(module), func) is anomalies.check_all_brands
    brands.create_brand(ctx, "loud", "Loud")
    brands.create_brand(ctx, "silent", "Silent")
    _seed_spike(ctx, "loud", date(2026, 10, 20))
    _seed_spike(ctx, "silent", date(2026, 10, 20))
    brand_webhooks.set_webhook(ctx, "loud", "anomalies", receiver.url, SECRET)
    results = anomalies.check_all_brands(ctx)
    assert [r["brand_id"] for r in results] == ["loud"]  # no webhook, no check
    assert results[0]["day"] == "2026-10-20" and results[0]["delivery"]["ok"]
    _headers, body = receiver.requests[-1]
    assert json.loads(body)["brand_id"] == "loud"


def test_api_sets_the_webhook_and_shows_the_log(ctx: Context, receiver: Receiver) -> None:
    import httpx

    from siyu.api.app import create_app
    from siyu.domain.models import Role
    from tests.support.live import live_server

    brands.create_brand(ctx, "apih", "API hooks")
    brands.create_user(ctx, "apih", "apih.admin", "password-123", Role.ADMIN)
    brands.create_user(ctx, "apih", "apih.op", "password-123", Role.OPERATOR)
    with live_server(create_app(ctx, with_console=False)) as base:

        def h(username: str) -> dict[str, str]:
            r = httpx.post(f"{base}/api/auth/login", json={"username": username, "password": "password-123"})
            return {"Authorization": f"Bearer {r.json()['token']}"}

        url = f"{base}/api/metrics/anomalies/webhook"
        assert httpx.put(url, json={"url": receiver.url}, headers=h("apih.op")).status_code == 403
        bad = httpx.put(url, json={"url": "not a url"}, headers=h("apih.admin"))
        assert bad.status_code == 400 and bad.json()["field"] == "url"
        ok = httpx.put(url, json={"url": receiver.url}, headers=h("apih.admin"))
        assert ok.status_code == 200 and len(ok.json()["secret"]) == 64
        assert brand_webhooks.get_webhook(ctx, "apih", "anomalies").secret == ok.json()["secret"]  # type: ignore[union-attr]
        brand_webhooks.send(ctx, "apih", "anomalies", {"x": 1})
        log = httpx.get(f"{base}/api/metrics/anomalies/deliveries", headers=h("apih.admin")).json()
        assert log["webhook_url"] == receiver.url and log["items"][0]["ok"]
        assert httpx.get(f"{base}/api/metrics/anomalies/deliveries", headers=h("apih.op")).status_code == 403
