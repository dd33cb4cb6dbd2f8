"""The group-commit writer: dedup beyond its in-memory memory (fresh process), observations only for new events."""

from __future__ import annotations

import orjson
import pytest

from siyu.config import Settings
from siyu.services import write_keys
from siyu.services.brands import create_brand
from siyu.services.context import Context
from siyu.services.ingest import get_writer, ingest


def _identify(mid: str, user: str) -> dict[str, object]:
    return {"type": "identify", "messageId": mid, "userId": user, "traits": {"email": f"{user}@example.cn"}}


def test_duplicates_from_before_a_restart_are_stored_once(settings: Settings) -> None:
    ctx = Context.open(settings)
    create_brand(ctx, "acme", "Acme")
    _, key = write_keys.create_key(ctx, "acme")
    ingest(ctx, orjson.dumps({"batch": [_identify("m1", "u1"), _identify("m2", "u2")]}), None, key)
    assert get_writer(ctx).stats.slow_path_commits == 0
    ctx.close()

    ctx = Context.open(settings)  # a new process: the writer's recent-id memory is empty
    try:
        sub = ingest(ctx, orjson.dumps({"batch": [_identify("m2", "u2"), _identify("m3", "u3")]}), None, key)
        assert sub.accepted == 2
        stats = get_writer(ctx).stats
        assert stats.slow_path_commits == 1 and stats.events_stored == 1
        rows = ctx.warehouse.fetch("SELECT message_id FROM events ORDER BY message_id")
        assert [r[0] for r in rows] == ["m1", "m2", "m3"]
        refs = ctx.warehouse.fetch("SELECT source_ref FROM identity_observations ORDER BY obs_id")
        assert [r[0] for r in refs] == ["m1", "m2", "m3"]
        # a retry inside the same process is dropped before DuckDB (no slow path)
        ingest(ctx, orjson.dumps({"batch": [_identify("m3", "u3")]}), None, key)
        assert get_writer(ctx).stats.slow_path_commits == 1
        assert ctx.warehouse.fetch("SELECT count(*) FROM identity_observations")[0][0] == 3
    finally:
        ctx.close()


def test_recent_id_memory_keeps_two_generations(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    from siyu.services.ingest import writer as ingest_mod

    monkeypatch.setattr(ingest_mod, "RECENT_IDS", 4)  # generations of 2 ids
    create_brand(ctx, "acme", "Acme")
    _, key = write_keys.create_key(ctx, "acme")

    def send(*mids: str) -> None:
        ingest(ctx, orjson.dumps({"batch": [_identify(m, "u" + m) for m in mids]}), None, key)

    send("m1", "m2")  # generation full: it becomes the old one
    send("m3")
    send("m1")  # still remembered (old generation): dropped before DuckDB
    stats = get_writer(ctx).stats
    assert stats.slow_path_commits == 0 and stats.events_stored == 3
    send("m4")  # {m3, m4} becomes the old generation, {m1, m2} is forgotten
    send("m1")  # forgotten: DuckDB's key catches it, still stored once
    assert stats.slow_path_commits == 1
    assert ctx.warehouse.fetch("SELECT count(*) FROM events")[0][0] == 4
    assert ctx.warehouse.fetch("SELECT count(*) FROM identity_observations")[0][0] == 4


def test_a_request_mixing_retries_and_new_events_stores_only_the_new(ctx: Context) -> None:
    create_brand(ctx, "acme", "Acme")
    create_brand(ctx, "beta", "Beta")
    _, key = write_keys.create_key(ctx, "acme")
    _, key_b = write_keys.create_key(ctx, "beta")
    ingest(ctx, orjson.dumps({"batch": [_identify("m1", "u1"), _identify("m2", "u2")]}), None, key)
    # m2 retried, m3 new and repeated inside the same batch, a track event without an observation in between
    track = {"type": "track", "messageId": "t1", "userId": "u9", "event": "Viewed"}
    batch = [_identify("m2", "u2"), _identify("m3", "u3"), track, _identify("m3", "u3")]
    sub = ingest(ctx, orjson.dumps({"batch": batch}), None, key)
    assert sub.accepted == 4
    # the same message id under another brand is a different event
    ingest(ctx, orjson.dumps({"batch": [_identify("m1", "x1")]}), None, key_b)
    rows = ctx.warehouse.fetch("SELECT brand_id, message_id FROM events ORDER BY ALL")
    assert rows == [("acme", "m1"), ("acme", "m2"), ("acme", "m3"), ("acme", "t1"), ("beta", "m1")]
    refs = ctx.warehouse.fetch("SELECT brand_id, source_ref FROM identity_observations ORDER BY obs_id")
    assert refs == [("acme", "m1"), ("acme", "m2"), ("acme", "m3"), ("beta", "m1")]
    assert get_writer(ctx).stats.slow_path_commits == 0


def test_duckdb_is_narrowed_while_ingestion_is_busy(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    """While the loader is busy DuckDB runs on Settings.ingest_busy_threads threads (acks first); after an idle
    pause it gets all its threads back."""
    import time

    from siyu.services.ingest import writer as ingest_mod

    monkeypatch.setattr(ingest_mod, "IDLE_CHECKPOINT_SECONDS", 1.5)
    full = int(ctx.warehouse.fetch("SELECT current_setting('threads')")[0][0])
    if full < 2:
        pytest.skip("one core: nothing to narrow")
    create_brand(ctx, "acme", "Acme")
    _, key = write_keys.create_key(ctx, "acme")
    ingest(ctx, orjson.dumps({"batch": [_identify("t1", "u1")]}), None, key)
    assert int(ctx.warehouse.fetch("SELECT current_setting('threads')")[0][0]) == ctx.settings.ingest_busy_threads
    deadline = time.monotonic() + 10
    while int(ctx.warehouse.fetch("SELECT current_setting('threads')")[0][0]) != full and time.monotonic() < deadline:
        time.sleep(0.05)
    assert int(ctx.warehouse.fetch("SELECT current_setting('threads')")[0][0]) == full
