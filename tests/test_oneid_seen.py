"""Deferred first/last-seen times: written behind by the incremental path, visible to look-ups at once."""

from __future__ import annotations

from datetime import datetime, timedelta

from siyu.domain.models import Identity
from siyu.services import brands, oneid
from siyu.services.context import Context

B = "acme"
T0 = datetime(2026, 1, 1, 9, 0)
UID = Identity("user_id", "u1")
ANON = Identity("anonymous_id", "a1")


def _observe(ctx: Context, ref: str, minutes: int) -> None:
    with oneid.observation_transaction(ctx) as tx:
        oneid.add_observations(tx, B, [oneid.Observation("event", ref, T0 + timedelta(minutes=minutes), (UID, ANON))])


def _stored_last_seen(ctx: Context) -> datetime:
    return ctx.warehouse.fetch(
        "SELECT last_seen_at FROM identities WHERE brand_id = ? AND id_type = 'user_id' AND id_value = 'u1'", [B]
    )[0][0]


def test_deferred_last_seen_is_read_at_once_and_flushed(ctx: Context) -> None:
    brands.create_brand(ctx, B, "Acme")
    _observe(ctx, "m1", 0)
    oneid.resolve_pending(ctx, B, seen_delay=3600)
    assert _stored_last_seen(ctx) == T0  # new identifiers are written at once
    cid = oneid.customer_of(ctx, B, UID)
    assert cid is not None

    _observe(ctx, "m2", 30)
    stats = oneid.resolve_pending(ctx, B, seen_delay=3600)
    assert stats.observations == 1
    assert _stored_last_seen(ctx) == T0  # written behind ...
    assert oneid.seen_pending(ctx, B) == 2
    seen = {i["type"]: i for i in oneid.identifiers_of(ctx, B, cid)}
    assert seen["user_id"]["last_seen_at"] == T0 + timedelta(minutes=30)  # ... but read correctly now
    assert seen["user_id"]["first_seen_at"] == T0

    assert oneid.flush_seen(ctx, B) == 2
    assert oneid.seen_pending(ctx, B) == 0
    assert _stored_last_seen(ctx) == T0 + timedelta(minutes=30)


def test_a_run_without_delay_writes_what_earlier_runs_deferred(ctx: Context) -> None:
    brands.create_brand(ctx, B, "Acme")
    _observe(ctx, "m1", 0)
    oneid.resolve_pending(ctx, B)
    _observe(ctx, "m2", 30)
    oneid.resolve_pending(ctx, B, seen_delay=3600)
    _observe(ctx, "m3", 10)  # older than m2: last seen stays at m2
    oneid.resolve_pending(ctx, B)
    assert oneid.seen_pending(ctx, B) == 0
    assert _stored_last_seen(ctx) == T0 + timedelta(minutes=30)
    oneid.rebuild(ctx, B)  # the rebuild computes the same times from all observations
    assert _stored_last_seen(ctx) == T0 + timedelta(minutes=30)
