"""Journey SMS sends through the messaging outbox to the local SMS vendor: one message per customer and step even
when the executor repeats the call (same step key), the daily marketing cap applied across journeys."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from siyu.config import Settings
from siyu.domain.models import Role
from siyu.services import brands, messaging
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.journeys import definitions as jdef
from siyu.services.journeys.channel_senders import OutboxSender
from siyu.services.journeys.effects import deliver_effects
from siyu.services.journeys.entries import enter_customers
from siyu.services.journeys.executor import run_until_idle
from siyu.services.journeys.senders import OutboundMessage, sender_for
from siyu.stores.state.journey_models import JourneyEffectRow
from tests.sms_server import sms_server

BRAND = "js"
T0 = datetime(2026, 11, 20, 2, 0)


@pytest.fixture(scope="module")
def sctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Context]:
    from siyu.services.demo import DemoConfig, seed_demo

    c = Context.open(Settings(data_dir=tmp_path_factory.mktemp("journey_sms") / "data"))
    seed_demo(c, DemoConfig(customers=150, brand_id=BRAND))
    yield c
    c.close()


def _with_phone(ctx: Context, n: int) -> list[str]:
    rows = ctx.warehouse.fetch(
        "SELECT customer_id FROM customers WHERE brand_id = ? AND phone IS NOT NULL ORDER BY customer_id", [BRAND]
    )
    return [r[0] for r in rows][:n]


def test_journey_sms_goes_through_the_outbox_once_per_step(sctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIYU_HUEY_CONSUMER", "off")
    admin = User(1, BRAND, "ops", "ops", Role.ADMIN, None, "zh")
    brands.ensure_brand(sctx, BRAND, "Journey SMS")
    assert isinstance(sender_for("sms"), OutboxSender)  # the built-in sender when no connector registered one
    with sms_server() as vendor:
        settings = {"access_key_id": "testid", "access_key_secret": "testsecret", "sign_name": "思域测试"}
        messaging.set_provider(sctx, admin, "sms", "aliyun", {**settings, "endpoint": vendor.url})
        d = {
            "trigger": {"kind": "manual"},
            "start": "sms",
            "nodes": [
                {
                    "id": "sms",
                    "kind": "action",
                    "action": {
                        "type": "send",
                        "channel": "sms",
                        "template": "SMS_71390007",
                        "content": '{"customer": "会员"}',
                    },
                },
                {"id": "end", "kind": "exit"},
            ],
            "edges": [{"from": "sms", "to": "end"}],
        }
        j = jdef.create_journey(sctx, admin, "sms-" + uuid.uuid4().hex[:6], d)
        jdef.publish(sctx, admin, j.id, now=T0 - timedelta(hours=1))
        ids = _with_phone(sctx, 5)
        assert enter_customers(sctx, BRAND, j.id, [(c, "m") for c in ids], T0) == len(ids)
        run_until_idle(sctx, T0)
        assert deliver_effects(sctx, T0)["done"] == len(ids)
        with sctx.sessions() as s:
            effects = list(s.scalars(select(JourneyEffectRow).where(JourneyEffectRow.journey_id == j.id)))
        # the executor repeating a call after a crash: same step key, same outbox message, nothing new queued
        first = effects[0]
        again = OutboxSender("sms").send(
            sctx,
            OutboundMessage(
                first.key, BRAND, j.id, "sms", first.customer_id, "sms", "SMS_71390007", first.payload["content"]
            ),
        )
        assert again.ok
        rows = _outbox_rows(sctx)
        assert len(rows) == len(ids) and {r[1] for r in rows} == {e.key for e in effects}
        assert again.provider_id in {str(r[0]) for r in rows}
        messaging.process_due(sctx)
        assert len(vendor.state.sent) == len(ids)
        # a second journey the same day: the daily marketing cap (1/day) holds the same customers back
        other = OutboxSender("sms").send(
            sctx, OutboundMessage("other-journey-step", BRAND, "j2", "n1", ids[0], "sms", "SMS_71390007", "{}")
        )
        assert not other.ok and "purpose" in (other.error or "")


def _outbox_rows(ctx: Context) -> list[tuple[int, str]]:
    from siyu.stores.state.messaging_models import OutboxRow

    with ctx.sessions() as s:
        return [(r.id, r.idempotency_key) for r in s.scalars(select(OutboxRow).where(OutboxRow.brand_id == BRAND))]
