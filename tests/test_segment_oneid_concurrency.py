"""Ingestion and OneID interleaving: no gaps under the watermark (so no forced rebuild), acks never wait for OneID."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta

import orjson
import pytest

from siyu.domain.models import Identity
from siyu.services import oneid, write_keys
from siyu.services.brands import create_brand
from siyu.services.context import Context
from siyu.services.ingest import WRITER_KEY, IngestWriter, ingest, submit

B = "acme"


def _batch(tag: str, n: int) -> bytes:
    events = [
        {"type": "identify", "messageId": f"{tag}-{i}", "userId": f"u-{tag}-{i}", "anonymousId": f"a-{tag}-{i}"}
        for i in range(n)
    ]
    return orjson.dumps({"batch": events})


def _setup(ctx: Context, interval: float) -> tuple[str, IngestWriter]:
    create_brand(ctx, B, "Acme")
    _, key = write_keys.create_key(ctx, B)
    writer = IngestWriter(ctx, resolve_interval=interval)
    ctx.extras[WRITER_KEY] = writer
    return key, writer


def test_ingest_imports_and_resolution_interleave_without_a_forced_rebuild(ctx: Context) -> None:
    key, writer = _setup(ctx, interval=0.0)  # the trigger resolves as often as it can
    stop = threading.Event()
    modes: list[str] = []
    errors: list[BaseException] = []

    def importer() -> None:  # a batch writer holding write_lock around its transaction, like imports do
        k = 0
        while not stop.is_set():
            obs = [
                oneid.Observation(
                    "import:customers",
                    f"c.csv#row{k}-{j}",
                    datetime(2026, 1, 1) + timedelta(seconds=k),
                    (Identity("member_id", f"M{k}-{j}"), Identity("user_id", f"u-b{k}-{j}")),
                )
                for j in range(5)
            ]
            with ctx.warehouse.write_lock, ctx.warehouse.transaction() as tx:
                oneid.add_observations(tx, B, obs)
            k += 1
            time.sleep(0.002)  # a real import parses between its transactions (and RLock is not fair)

    def resolver() -> None:
        while not stop.is_set():
            try:
                modes.append(oneid.resolve_pending(ctx, B).mode)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)
                return

    def client(c: int) -> None:
        for r in range(30):
            subs = [submit(ctx, _batch(f"c{c}r{r}x{j}", 100), None, key) for j in range(3)]
            for s in subs:
                s.future.result(30)

    threads = [threading.Thread(target=importer), threading.Thread(target=resolver)]
    clients = [threading.Thread(target=client, args=(c,)) for c in range(3)]
    for t in threads + clients:
        t.start()
    for t in clients:
        t.join(120)
    stop.set()
    for t in threads:
        t.join(60)
    writer.close()
    assert not errors
    final = oneid.resolve_pending(ctx, B)
    modes.append(final.mode)

    assert len(modes) >= 3 and writer.stats.resolve_runs > 0
    assert "rebuild" not in modes, f"{modes.count('rebuild')} forced rebuilds out of {len(modes)} runs"
    assert writer.stats.resolve_rebuilds == 0 and writer.stats.resolve_errors == 0
    # every observation was resolved exactly as a full rebuild resolves it
    n_obs = ctx.warehouse.fetch("SELECT count(*), max(obs_id) FROM identity_observations WHERE brand_id = ?", [B])
    assert final.last_obs_id == n_obs[0][1]
    assert n_obs[0][0] >= 3 * 30 * 3 * 100
    before = ctx.warehouse.fetch("SELECT id_type, id_value, customer_id FROM identities ORDER BY 1, 2")
    distinct = ctx.warehouse.fetch(
        "SELECT count(DISTINCT (i.type, i.value)) FROM (SELECT unnest(identifiers) AS i FROM identity_observations)"
    )
    assert len(before) == distinct[0][0]
    oneid.rebuild(ctx, B)
    assert ctx.warehouse.fetch("SELECT id_type, id_value, customer_id FROM identities ORDER BY 1, 2") == before


def test_acks_do_not_wait_for_a_running_oneid_resolution(ctx: Context) -> None:
    key, writer = _setup(ctx, interval=3600.0)
    ingest(ctx, _batch("warm", 5), None, key)
    oneid.resolve_pending(ctx, B)
    # OneID holds write_lock for its whole run; hold it here the same way and ingest meanwhile
    held = threading.Event()
    release = threading.Event()

    def long_resolution() -> None:
        with ctx.warehouse.write_lock:
            held.set()
            release.wait(60)

    t = threading.Thread(target=long_resolution)
    t.start()
    try:
        assert held.wait(10)
        sub = ingest(ctx, _batch("during", 10), None, key, timeout=10)  # would time out behind write_lock
        assert sub.accepted == 10
        assert ctx.warehouse.fetch("SELECT count(*) FROM events WHERE message_id LIKE 'during-%'")[0][0] == 10
    finally:
        release.set()
        t.join(10)
    stats = oneid.resolve_pending(ctx, B)
    assert (stats.mode, stats.observations) == ("incremental", 10)
    assert oneid.customer_of(ctx, B, Identity("user_id", "u-during-3")) == oneid.customer_of(
        ctx, B, Identity("anonymous_id", "a-during-3")
    )
    writer.close()


def _late_commit_scenario(ctx: Context, *, protocol: bool) -> list[oneid.ResolveStats]:
    """An observation writer inserts (its obs_id is assigned) but has not committed while a batch writer commits
    a higher obs_id and OneID resolves; returns the stats of that resolution and of the next one."""
    at = datetime(2026, 1, 1)
    inserted, go = threading.Event(), threading.Event()

    def slow_writer() -> None:
        txn = oneid.observation_transaction(ctx) if protocol else ctx.warehouse.transaction()
        with txn as tx:
            oneid.add_observations(tx, B, [oneid.Observation("event", "slow", at, (Identity("user_id", "slow"),))])
            inserted.set()
            go.wait(30)

    w = threading.Thread(target=slow_writer)
    w.start()
    assert inserted.wait(10)
    with ctx.warehouse.write_lock, ctx.warehouse.transaction() as tx:
        oneid.add_observations(tx, B, [oneid.Observation("import:x", "r1", at, (Identity("member_id", "M1"),))])
    out: list[oneid.ResolveStats] = []
    r = threading.Thread(target=lambda: out.append(oneid.resolve_pending(ctx, B)))
    r.start()
    r.join(0.3)  # with the protocol OneID waits for the in-flight commit; without it, it goes ahead
    go.set()
    w.join(10)
    r.join(10)
    out.append(oneid.resolve_pending(ctx, B))
    return out


def test_an_in_flight_observation_commit_is_waited_for_not_rebuilt(ctx: Context) -> None:
    create_brand(ctx, B, "Acme")
    oneid.resolve_pending(ctx, B)  # index loaded, watermark 0
    first, second = _late_commit_scenario(ctx, protocol=True)
    assert (first.mode, first.observations) == ("incremental", 2)
    assert (second.mode, second.observations) == ("incremental", 0)
    assert oneid.customer_of(ctx, B, Identity("user_id", "slow")) is not None


def test_a_writer_outside_the_protocol_forces_a_rebuild(ctx: Context) -> None:
    """The detection the lock makes unnecessary: a commit below the watermark is found and rebuilt."""
    create_brand(ctx, B, "Acme")
    oneid.resolve_pending(ctx, B)
    first, second = _late_commit_scenario(ctx, protocol=False)
    assert (first.mode, first.observations) == ("incremental", 1)  # the in-flight observation was not visible
    assert second.mode == "rebuild"
    assert oneid.customer_of(ctx, B, Identity("user_id", "slow")) is not None


def test_the_ingest_writer_commits_under_the_observation_lock(ctx: Context) -> None:
    key, writer = _setup(ctx, interval=3600.0)
    lock = oneid.observation_lock(ctx)
    with lock:
        sub = submit(ctx, _batch("locked", 3), None, key)
        sub.future.result(10)  # the ack (durable in the ingest log) does not wait for the lock ...
        with pytest.raises(TimeoutError):
            sub.loaded.result(0.3)  # ... loading into the warehouse does
    sub.loaded.result(10)  # ... and went through once it was free
    assert ctx.warehouse.fetch("SELECT count(*) FROM identity_observations")[0][0] == 3
    writer.close()


def test_the_trigger_flushes_deferred_last_seen_when_ingestion_pauses(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    from siyu.services.ingest import resolve_trigger

    monkeypatch.setattr(resolve_trigger, "ONEID_SEEN_DELAY_SECONDS", 0.3)
    key, writer = _setup(ctx, interval=0.0)

    def identify(mid: str, ts: str) -> bytes:
        return orjson.dumps({"type": "identify", "messageId": mid, "userId": "u9", "timestamp": ts})

    ingest(ctx, identify("i1", "2026-01-01T09:00:00Z"), "identify", key)
    deadline = time.monotonic() + 20
    while oneid.customer_of(ctx, B, Identity("user_id", "u9")) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    ingest(ctx, identify("i2", "2026-01-01T10:00:00Z"), "identify", key)

    def stored() -> datetime | None:
        rows = ctx.warehouse.fetch("SELECT last_seen_at FROM identities WHERE id_value = 'u9'")
        return rows[0][0] if rows else None

    while stored() != datetime(2026, 1, 1, 10, 0) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stored() == datetime(2026, 1, 1, 10, 0)
    assert oneid.seen_pending(ctx, B) == 0 and writer.stats.resolve_runs >= 2
    writer.close()
