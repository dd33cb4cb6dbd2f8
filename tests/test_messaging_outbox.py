"""The messaging outbox on real stores: SMS through the local Alibaba server, email through aiosmtpd, webhooks to a
local receiver; idempotency, retries with backoff into dead letters, re-send, the daily marketing cap (also under
concurrent senders), recovery of a killed worker's send, and delivery by the Huey consumer."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from siyu.connectors.webhooks import verify
from siyu.domain.contact_cap import DailyCap, split_by_cap
from siyu.domain.models import Role
from siyu.errors import Conflict, SiyuError
from siyu.services import brand_webhooks, brands, messaging
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.messaging import outbox
from siyu.stores.state.models import utcnow
from tests.sms_server import sms_server
from tests.support.postgres import free_port


class Clock:
    def __init__(self) -> None:
        self.t = time.time()

    def __call__(self) -> float:
        return self.t


def _admin(ctx: Context, brand: str = "shop") -> User:
    brands.ensure_brand(ctx, brand, "Shop")
    return User(1, brand, "ops", "ops", Role.ADMIN, None, "zh")


def _sms(ctx: Context, user: User, url: str) -> None:
    messaging.set_provider(
        ctx,
        user,
        "sms",
        "aliyun",
        {"access_key_id": "testid", "access_key_secret": "testsecret", "sign_name": "思域测试", "endpoint": url},
    )


def _sms_req(phone: str = "138 0013 8000", **kw: Any) -> messaging.SendRequest:
    kw.setdefault("params", {"customer": "张三"})
    return messaging.SendRequest(channel="sms", recipient=phone, template="SMS_71390007", **kw)


def test_sms_is_sent_once_per_idempotency_key(ctx: Context) -> None:
    user = _admin(ctx)
    with sms_server() as vendor:
        with pytest.raises(SiyuError, match="no SMS provider") as e:
            messaging.send(ctx, user, _sms_req(), queue=False)
        assert e.value.field == "channel"
        _sms(ctx, user, vendor.url)
        with pytest.raises(SiyuError, match="not a valid number") as e:
            messaging.send(ctx, user, _sms_req("12345"), queue=False)
        assert e.value.field == "recipient"
        msg, created = messaging.send(ctx, user, _sms_req(idempotency_key="order-1001-paid"), queue=False)
        assert created and msg["status"] == "queued" and msg["recipient"] == "+8613800138000" and msg["attempts"] == 0
        again, created2 = messaging.send(ctx, user, _sms_req(idempotency_key="order-1001-paid"), queue=False)
        assert not created2 and again["id"] == msg["id"]
        with pytest.raises(Conflict, match="different message"):
            messaging.send(ctx, user, _sms_req("13900139000", idempotency_key="order-1001-paid"), queue=False)
        assert messaging.deliver(ctx, msg["id"]) == "sent"
        assert messaging.deliver(ctx, msg["id"]) is None  # already sent: nobody can claim it again
        messaging.send(ctx, user, _sms_req(idempotency_key="order-1001-paid"), queue=False)
        assert messaging.process_due(ctx) == {"recovered": 0}
        done = messaging.get_message(ctx, user, msg["id"])
        assert len(vendor.state.sent) == 1 and vendor.state.sent[0]["out_id"] == msg["id"]
        assert done["status"] == "sent" and done["vendor_id"] == vendor.state.sent[0]["biz_id"] and done["sent_at"]
        # the secret is stored but never shown
        shown = messaging.public_settings(ctx, user)
        assert shown["sms"]["access_key_secret_set"] is True and "testsecret" not in str(shown)


def test_rate_limited_sms_backs_off_then_goes_dead_and_can_be_resent(ctx: Context) -> None:
    user = _admin(ctx)
    clock = Clock()
    with sms_server(clock=clock) as vendor:
        _sms(ctx, user, vendor.url)
        first, _ = messaging.send(ctx, user, _sms_req(), queue=False)
        second, _ = messaging.send(ctx, user, _sms_req(params={"customer": "李四"}), queue=False)
        now = utcnow()
        assert messaging.process_due(ctx, now) == {"recovered": 0, "sent": 1, "failed": 1}
        m = messaging.get_message(ctx, user, second["id"])
        assert m["error_code"] == "isv.BUSINESS_LIMIT_CONTROL" and "流控" in m["error"] and m["attempts"] == 1
        assert m["next_attempt_at"] == (now + timedelta(seconds=60)).isoformat()  # the vendor's wait > 30 s backoff
        assert messaging.process_due(ctx, now + timedelta(seconds=59)).get("failed") is None  # not due yet
        # backoff 30 s × 2^(attempt-1), at least 60 s; the vendor keeps refusing (5 per hour after 1 per minute)
        t = now
        waits = []
        for _ in range(4):
            nxt = messaging.get_message(ctx, user, second["id"])["next_attempt_at"]
            due = type(now).fromisoformat(nxt)
            waits.append((due - t).total_seconds())
            t = due
            clock.t += 1  # within the vendor's minute: still limited
            messaging.process_due(ctx, t)
        assert waits == [60, 60, 120, 240]
        dead = messaging.get_message(ctx, user, second["id"])
        assert dead["status"] == "dead" and dead["attempts"] == 5
        letters = messaging.list_messages(ctx, user, status="dead")
        assert [x["id"] for x in letters["items"]] == [second["id"]] and letters["by_status"]["dead"] == 1
        with pytest.raises(Conflict, match="not dead"):
            messaging.resend(ctx, user, first["id"])
        clock.t += 120  # a minute later the vendor lets it through
        resent = messaging.resend(ctx, user, second["id"], queue=False)
        assert resent["status"] == "queued" and resent["attempts"] == 0
        assert messaging.deliver(ctx, second["id"]) == "sent"
        assert [s["params"]["customer"] for s in vendor.state.sent] == ["张三", "李四"]


def test_final_errors_go_dead_at_once(ctx: Context) -> None:
    user = _admin(ctx)
    with sms_server() as vendor:
        _sms(ctx, user, vendor.url)
        bad, _ = messaging.send(
            ctx, user, messaging.SendRequest(channel="sms", recipient="13800138000", template="SMS_404"), queue=False
        )
        assert messaging.deliver(ctx, bad["id"]) == "dead"
        m = messaging.get_message(ctx, user, bad["id"])
        assert m["attempts"] == 1 and m["error_code"] == "isv.SMS_TEMPLATE_ILLEGAL" and "模板不合法" in m["error"]
        vendor.state.faults = [("delay", 1.5)]
        # a short read timeout (the secret is kept when left out): the vendor sends, the answer comes too late
        messaging.set_provider(
            ctx,
            user,
            "sms",
            "aliyun",
            {"access_key_id": "testid", "sign_name": "思域测试", "endpoint": vendor.url, "timeout": 0.3},
        )
        slow, _ = messaging.send(ctx, user, _sms_req("13700137000"), queue=False)
        assert messaging.deliver(ctx, slow["id"]) == "dead"
        m = messaging.get_message(ctx, user, slow["id"])
        assert m["error_code"] == "Timeout" and "may have sent" in m["error"]
        time.sleep(1.3)
        assert len(vendor.state.sent) == 1  # it did go out: which is why it was not retried


def test_marketing_cap_per_customer_per_day(ctx: Context) -> None:
    user = _admin(ctx)
    with sms_server() as vendor:
        _sms(ctx, user, vendor.url)
        mk = {"purpose": "marketing"}
        one, _ = messaging.send(ctx, user, _sms_req("13800138000", **mk), queue=False)
        with pytest.raises(messaging.CapReached, match="1/day") as e:
            messaging.send(ctx, user, _sms_req("13800138000", params={"customer": "x"}, **mk), queue=False)
        assert e.value.status_code == 409
        messaging.send(ctx, user, _sms_req("13800138000", params={"customer": "y"}), queue=False)  # transactional
        messaging.send(ctx, user, _sms_req("13900139000", **mk), queue=False)  # another customer
        assert outbox.sent_today(ctx, "shop", ["+8613800138000", "+8613900139000", "+8613700137000"]) == {
            "+8613800138000": 1,
            "+8613900139000": 1,
        }
        split = messaging.cap_split(ctx, "shop", ["+8613800138000", "+8613700137000", "+8613900139000"])
        assert split.allowed == ["+8613700137000"] and split.capped == ["+8613800138000", "+8613900139000"]
        messaging.set_marketing_cap(ctx, user, 2)
        messaging.send(ctx, user, _sms_req("13800138000", params={"customer": "z"}, **mk), queue=False)
        with pytest.raises(messaging.CapReached, match="2/day"):
            messaging.send(ctx, user, _sms_req("13800138000", params={"customer": "w"}, **mk), queue=False)
        with pytest.raises(SiyuError, match="0 to 20") as e2:
            messaging.set_marketing_cap(ctx, user, 21)
        assert e2.value.field == "marketing_daily_cap"
        # a marketing message that died (never delivered) frees its slot
        messaging.set_marketing_cap(ctx, user, 1)
        dead, _ = messaging.send(
            ctx,
            user,
            messaging.SendRequest(channel="sms", recipient="13600136000", template="SMS_404", **mk),
            queue=False,
        )
        assert messaging.deliver(ctx, dead["id"]) == "dead"
        messaging.send(ctx, user, _sms_req("13600136000", **mk), queue=False)
        assert one["id"]


def test_the_cap_holds_under_concurrent_senders(ctx: Context) -> None:
    user = _admin(ctx)
    with sms_server() as vendor:
        _sms(ctx, user, vendor.url)
        results: list[str] = []

        def worker(i: int) -> None:
            try:
                messaging.send(
                    ctx, user, _sms_req("13500135000", purpose="marketing", params={"customer": str(i)}), queue=False
                )
                results.append("ok")
            except messaging.CapReached:
                results.append("capped")

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert sorted(results) == ["capped"] * 7 + ["ok"]


def test_cap_rule_for_mass_sends() -> None:
    cap = DailyCap(1)
    split = split_by_cap(["a", "b", "a", "c"], {"b": 1}, cap)
    assert split.allowed == ["a", "c"] and split.capped == ["b"]
    assert DailyCap(2).slot([1]) == 2 and DailyCap(2).slot([1, 2]) is None and DailyCap(0).slot([]) is None
    from datetime import datetime

    assert cap.day(datetime(2026, 11, 23, 16, 30)).isoformat() == "2026-11-24"  # 00:30 in Shanghai
    with pytest.raises(SiyuError) as e:
        DailyCap(1, "Mars/Base")
    assert e.value.field == "timezone"


class Receiver:
    """A webhook receiver answering with queued statuses (then 200)."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        self.delay = 0.0
        receiver = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *_a: Any) -> None:
                return None

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                time.sleep(receiver.delay)
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.end_headers()

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}/hook"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_failed_webhook_becomes_a_dead_letter_and_resend_keeps_its_delivery_id(
    ctx: Context, receiver: Receiver
) -> None:
    user = _admin(ctx)
    hook = brand_webhooks.set_webhook(ctx, "shop", "anomalies", receiver.url)
    receiver.statuses = [503, 503]
    d = brand_webhooks.send(ctx, "shop", "anomalies", {"x": 1}, retries=1, backoff=0.01)
    assert d is not None and not d.ok and d.attempts == 2
    letters = messaging.list_messages(ctx, user, status="dead", channel="webhook")["items"]
    assert len(letters) == 1 and letters[0]["id"] == d.delivery_id and letters[0]["error_code"] == "503"
    messaging.resend(ctx, user, d.delivery_id, queue=False)
    assert messaging.deliver(ctx, d.delivery_id) == "sent"
    headers, body = receiver.requests[-1]
    assert headers["X-Siyu-Delivery"] == d.delivery_id and verify(body, hook.secret, headers["X-Siyu-Signature"])
    assert [x["ok"] for x in brand_webhooks.deliveries(ctx, "shop")] == [True, False]


def test_enqueued_webhook_does_not_block_and_retries_later(ctx: Context, receiver: Receiver) -> None:
    user = _admin(ctx)
    brand_webhooks.set_webhook(ctx, "shop", "anomalies", receiver.url)
    receiver.delay = 5.0
    t0 = time.monotonic()
    mid = brand_webhooks.enqueue(ctx, "shop", "anomalies", {"day": "2026-11-23"})
    assert time.monotonic() - t0 < 4 and receiver.requests == []  # queued, not delivered by the caller
    receiver.delay, receiver.statuses = 0.0, [500]
    now = utcnow()
    assert messaging.deliver(ctx, mid, now) == "failed"
    assert messaging.get_message(ctx, user, mid)["next_attempt_at"] == (now + timedelta(seconds=30)).isoformat()
    assert messaging.process_due(ctx, now + timedelta(seconds=31)).get("sent") == 1
    assert len(receiver.requests) == 2 and receiver.requests[0][0]["X-Siyu-Delivery"] == mid
    with pytest.raises(SiyuError, match="no anomalies webhook"):
        brand_webhooks.enqueue(ctx, "other", "anomalies", {}) if brands.ensure_brand(ctx, "other", "O") else None


def test_a_send_interrupted_by_a_killed_worker_is_never_sent_twice(ctx: Context, receiver: Receiver) -> None:
    user = _admin(ctx)
    brand_webhooks.set_webhook(ctx, "shop", "anomalies", receiver.url)
    with sms_server() as vendor:
        _sms(ctx, user, vendor.url)
        sms, _ = messaging.send(ctx, user, _sms_req(), queue=False)
        hook, _ = messaging.send(
            ctx, user, messaging.SendRequest(channel="webhook", topic="anomalies", payload={"a": 1}), queue=False
        )
        now = utcnow()
        for mid in (sms["id"], hook["id"]):  # claimed, then the worker died before recording anything
            assert outbox._claim(ctx, mid, now) is not None
        assert messaging.process_due(ctx, now + timedelta(seconds=60)) == {"recovered": 0}
        counts = messaging.process_due(ctx, now + timedelta(seconds=301))
        assert counts == {"recovered": 2, "sent": 1}
        m = messaging.get_message(ctx, user, sms["id"])
        assert m["status"] == "dead" and m["error_code"] == "interrupted" and vendor.state.sent == []
        assert messaging.get_message(ctx, user, hook["id"])["status"] == "sent"
        assert receiver.requests[0][0]["X-Siyu-Delivery"] == hook["id"]  # receivers de-duplicate on it


def test_email_through_the_outbox(ctx: Context) -> None:
    user = _admin(ctx)
    got: list[bytes] = []

    class H:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            got.append(envelope.content)
            return "250 OK"

    port = free_port()
    c = Controller(H(), hostname="127.0.0.1", port=port)
    c.start()
    try:
        with pytest.raises(SiyuError) as e:
            messaging.set_provider(
                ctx, user, "email", "smtp", {"host": "127.0.0.1", "port": "x", "from_address": "crm@brand.cn"}
            )
        assert e.value.field == "port"
        messaging.set_provider(
            ctx,
            user,
            "email",
            "smtp",
            {"host": "127.0.0.1", "port": port, "security": "none", "from_address": "crm@brand.cn", "password": "pw"},
        )
        with pytest.raises(SiyuError) as e:
            messaging.send(ctx, user, messaging.SendRequest(channel="email", recipient="a@b.cn", text="x"))
        assert e.value.field == "subject"
        msg, _ = messaging.send(
            ctx,
            user,
            messaging.SendRequest(
                channel="email", recipient="Li@Brand.CN", subject="双十一会员专享", text="您好", html="<p>您好</p>"
            ),
            queue=False,
        )
        assert msg["recipient"] == "li@brand.cn" and messaging.deliver(ctx, msg["id"]) == "sent"
        assert len(got) == 1 and messaging.get_message(ctx, user, msg["id"])["vendor_id"].startswith("<")
    finally:
        c.stop()


def test_the_huey_consumer_sends_queued_messages(ctx: Context) -> None:
    from siyu.workers import start_consumer, unregister_context

    user = _admin(ctx)
    with sms_server() as vendor:
        _sms(ctx, user, vendor.url)
        consumer = start_consumer(ctx)
        try:
            msg, _ = messaging.send(ctx, user, _sms_req())
            deadline = time.time() + 20
            while time.time() < deadline and messaging.get_message(ctx, user, msg["id"])["status"] != "sent":
                time.sleep(0.1)
            assert messaging.get_message(ctx, user, msg["id"])["status"] == "sent" and len(vendor.state.sent) == 1
        finally:
            consumer.stop(graceful=True)
            unregister_context(ctx)


def test_concurrent_senders_and_workers_on_sqlite_and_postgresql(any_ctx: Context) -> None:
    """Same idempotency key from 8 threads → one message; the cap from 8 threads → one marketing message;
    8 workers delivering the same message → the vendor gets it once."""
    ctx = any_ctx
    user = _admin(ctx)
    with sms_server() as vendor:
        _sms(ctx, user, vendor.url)
        ids: list[str] = []
        capped: list[str] = []

        def same_key(_i: int) -> None:
            ids.append(messaging.send(ctx, user, _sms_req(idempotency_key="k-1"), queue=False)[0]["id"])

        def marketing(i: int) -> None:
            try:
                messaging.send(
                    ctx, user, _sms_req("13500135000", purpose="marketing", params={"customer": str(i)}), queue=False
                )
            except messaging.CapReached:
                capped.append("x")

        for fn in (same_key, marketing):
            threads = [threading.Thread(target=fn, args=(i,)) for i in range(8)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
        assert len(ids) == 8 and len(set(ids)) == 1 and len(capped) == 7
        statuses: list[str | None] = []
        workers = [threading.Thread(target=lambda: statuses.append(messaging.deliver(ctx, ids[0]))) for _ in range(8)]
        for th in workers:
            th.start()
        for th in workers:
            th.join()
        assert sorted(statuses, key=str) == [None] * 7 + ["sent"] and len(vendor.state.sent) == 1


def test_wecom_mass_sends_count_against_the_same_daily_cap(ctx: Context) -> None:
    """One cap across channels: a WeCom mass send that holds a customer's slot today caps SMS/email for them."""
    from siyu.domain.contact_cap import DailyCap
    from siyu.services.messaging import providers
    from siyu.stores.state.wecom_ops_models import WeComMassRecipientRow, WeComMassSendRow

    _admin(ctx)
    day = providers.marketing_cap(ctx, "shop").day(datetime.now(UTC)).isoformat()
    with ctx.sessions() as s:
        s.add(WeComMassSendRow(id="ms1", brand_id="shop", name="n", segment_id="seg", idempotency_key="k", cap_day=day))
        s.flush()
        for cid, status in (("c1", "sent"), ("c2", "capped"), ("c3", "failed")):
            s.add(
                WeComMassRecipientRow(
                    send_id="ms1", brand_id="shop", customer_id=cid, target=cid, cap_day=day, status=status
                )
            )
        s.commit()
    assert outbox.marketing_counts(ctx, "shop", ["c1", "c2", "c3"]) == {"c1": 1}
    split = messaging.cap_split(ctx, "shop", ["c1", "c2", "c3"])
    assert split.capped == ["c1"] and split.allowed == ["c2", "c3"]
    assert outbox._held_by_wecom(ctx, "shop", "c1", day) == 1 and outbox._held_by_wecom(ctx, "shop", None, day) == 0
    cap = DailyCap(per_day=2)
    assert cap.slot([], held_elsewhere=1) == 2 and cap.slot([1], held_elsewhere=1) is None
    assert cap.slot([2], held_elsewhere=0) == 1
