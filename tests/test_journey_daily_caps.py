"""Per-channel daily caps of journeys count inside the brand's local day [midnight, next midnight) — across all
journeys — so a send on one side of a local midnight never counts on the other side."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select

from siyu.domain.models import Role
from siyu.services import brands
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.journeys import definitions as jdef
from siyu.services.journeys.entries import enter_customers
from siyu.services.journeys.executor import run_until_idle
from siyu.stores.state.journey_models import JourneyStepRow

ADMIN = User(0, "caps", "ops", "ops", Role.ADMIN, None, "zh")
MIDNIGHT = datetime(2026, 11, 20, 16, 0)  # 2026-11-21 00:00 in Asia/Shanghai (the brand's day), naive UTC


def _journey(ctx: Context) -> str:
    d = {
        "trigger": {"kind": "manual"},
        "start": "mail",
        "guards": {"channel_daily_caps": {"email": 1}},
        "nodes": [
            {"id": "mail", "kind": "action", "action": {"type": "send", "channel": "email", "content": "hi"}},
            {"id": "end", "kind": "exit"},
        ],
        "edges": [{"from": "mail", "to": "end"}],
    }
    j = jdef.create_journey(ctx, ADMIN, "cap-" + uuid.uuid4().hex[:6], d)
    jdef.publish(ctx, ADMIN, j.id, now=MIDNIGHT - timedelta(days=2))
    return j.id


def _outcome(ctx: Context, journey_id: str, customer: str, at: datetime) -> str:
    """Enter ``customer`` at ``at``, run the journey then, and return the send step's outcome."""
    assert enter_customers(ctx, "caps", journey_id, [(customer, "m")], at) == 1
    run_until_idle(ctx, at)
    with ctx.sessions() as s:
        return str(
            s.scalar(
                select(JourneyStepRow.outcome).where(
                    JourneyStepRow.journey_id == journey_id, JourneyStepRow.node_id == "mail"
                )
            )
        )


def test_channel_daily_cap_counts_within_the_local_day(ctx: Context) -> None:
    brands.create_brand(ctx, "caps", "Caps")
    before, after = MIDNIGHT - timedelta(minutes=1), MIDNIGHT + timedelta(minutes=1)
    # one customer, four journeys sending email with a cap of 1 a day, on both sides of the local midnight
    assert _outcome(ctx, _journey(ctx), "c1", after) == "ok"  # 00:01 on the 21st
    # a worker running late at 23:59 on the 20th: the send of the 21st is not in that day
    assert _outcome(ctx, _journey(ctx), "c1", before) == "ok"
    assert _outcome(ctx, _journey(ctx), "c1", before + timedelta(seconds=30)) == "channel_capped"  # the 20th: taken
    assert _outcome(ctx, _journey(ctx), "c1", after + timedelta(hours=23)) == "channel_capped"  # 23:01 on the 21st
    assert _outcome(ctx, _journey(ctx), "c1", MIDNIGHT + timedelta(days=1)) == "ok"  # 00:00 on the 22nd
    # another customer is not affected
    assert _outcome(ctx, _journey(ctx), "c2", after + timedelta(seconds=5)) == "ok"
