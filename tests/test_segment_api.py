"""Segment-compatible /v1 ingestion over real HTTP (uvicorn), real SQLite state and a real DuckDB warehouse."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from siyu.api.app import create_app
from siyu.config import Settings
from siyu.services import write_keys
from siyu.services.brands import create_brand
from siyu.services.context import Context
from siyu.services.ingest import wait_loaded
from tests.support.live import live_server


def _basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


class Env:
    """A live server over a fresh context with one brand and one write key."""

    def __init__(self, ctx: Context, base: str, key: str, key_id: str) -> None:
        self.ctx, self.base, self.key, self.key_id = ctx, base, key, key_id
        self.http = httpx.Client(base_url=base, timeout=30)

    def post(self, path: str, body: object, key: str | None = None, **kw: object) -> httpx.Response:
        """POST, then wait until what was acknowledged is loaded into the warehouse (a 200 means durable in the
        ingest log; loading follows within milliseconds)."""
        r = self.http.post(path, json=body, headers=_basic(key or self.key), **kw)  # type: ignore[arg-type]
        assert wait_loaded(self.ctx, 30)
        return r

    def events(self, where: str = "TRUE", params: list[object] | None = None) -> list[tuple[object, ...]]:
        assert wait_loaded(self.ctx, 30)
        return self.ctx.warehouse.fetch(
            "SELECT message_id, type, event, name, user_id, anonymous_id, group_id, previous_id, properties, traits "
            f"FROM events WHERE {where} ORDER BY received_at, message_id",
            params,
        )


def _env(settings: Settings) -> Iterator[Env]:
    ctx = Context.open(settings)
    try:
        create_brand(ctx, "acme", "Acme")
        key, secret = write_keys.create_key(ctx, "acme", "test")
        with live_server(create_app(ctx, with_console=False)) as base:
            env = Env(ctx, base, secret, key.id)
            yield env
            env.http.close()
    finally:
        ctx.close()


@pytest.fixture
def env(settings: Settings) -> Iterator[Env]:
    yield from _env(settings)


def _iso(dt: datetime) -> str:
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ------------------------------------------------------------------------------------------------ endpoints


@pytest.mark.parametrize(
    ("path", "body", "column", "value"),
    [
        ("/v1/identify", {"userId": "u1", "traits": {"name": "王芳"}}, "user_id", "u1"),
        (
            "/v1/track",
            {"anonymousId": "a1", "event": "Order Completed", "properties": {"total": 99}},
            "event",
            "Order Completed",
        ),
        ("/v1/page", {"userId": "u1", "name": "Home"}, "name", "Home"),
        ("/v1/screen", {"anonymousId": "a1", "name": "Cart"}, "name", "Cart"),
        ("/v1/group", {"userId": "u1", "groupId": "g-7"}, "group_id", "g-7"),
        ("/v1/alias", {"previousId": "a1", "userId": "u1"}, "previous_id", "a1"),
    ],
)
def test_each_endpoint_stores_its_event(env: Env, path: str, body: dict[str, object], column: str, value: str) -> None:
    mid = f"m-{uuid.uuid4()}"
    r = env.post(path, {**body, "messageId": mid})
    assert r.status_code == 200, r.text
    assert r.json()["success"] is True
    row = env.ctx.warehouse.fetch(f"SELECT type, {column}, write_key_id FROM events WHERE message_id = ?", [mid])
    assert row == [(path.rsplit("/", 1)[1], value, env.key_id)]


@pytest.mark.parametrize("path", ["/v1/batch", "/v1/import"])
def test_batch_and_import_store_all_types(env: Env, path: str) -> None:
    batch = [
        {"type": "identify", "userId": "u2", "traits": {"email": "A@B.cn"}},
        {"type": "track", "userId": "u2", "event": "Viewed"},
        {"type": "page", "anonymousId": "a2"},
    ]
    r = env.post(path, {"batch": batch})
    assert r.status_code == 200, r.text
    assert r.json() == {"success": True, "accepted": 3, "rejected": []}
    assert sorted(t for _, t, *_ in env.events()) == ["identify", "page", "track"]


def test_write_key_in_body_is_accepted(env: Env) -> None:
    r = env.http.post("/v1/track", json={"writeKey": env.key, "userId": "u", "event": "E", "messageId": "wk-body"})
    assert r.status_code == 200, r.text
    assert [m for m, *_ in env.events()] == ["wk-body"]


def test_unknown_missing_and_revoked_keys_get_401(env: Env) -> None:
    r = env.post("/v1/track", {"userId": "u", "event": "E"}, key="wk_not-a-key")
    assert r.status_code == 401 and r.json()["field"] == "writeKey"
    r = env.http.post("/v1/track", json={"userId": "u", "event": "E"})
    assert r.status_code == 401 and "write key" in r.json()["error"]
    assert env.post("/v1/track", {"userId": "u", "event": "E"}).status_code == 200
    write_keys.revoke_key(env.ctx, env.key_id)
    r = env.post("/v1/track", {"userId": "u", "event": "E"})
    assert r.status_code == 401 and "revoked" in r.json()["error"]
    assert len(env.events()) == 1


def test_several_keys_per_brand(env: Env) -> None:
    _, second = write_keys.create_key(env.ctx, "acme", "app")
    assert env.post("/v1/track", {"userId": "u", "event": "E"}, key=second).status_code == 200
    assert len(write_keys.list_keys(env.ctx, "acme")) == 2


# ------------------------------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/track", {"userId": "u"}, "event"),
        ("/v1/track", {"event": "E"}, "userId"),
        ("/v1/identify", {"traits": {"name": "x"}}, "userId"),
        ("/v1/alias", {"userId": "u"}, "previousId"),
        ("/v1/alias", {"previousId": "a"}, "userId"),
        ("/v1/group", {"userId": "u"}, "groupId"),
        ("/v1/track", {"userId": "u", "event": "E", "timestamp": "yesterday"}, "timestamp"),
        ("/v1/track", {"userId": "u", "event": "E", "properties": [1]}, "properties"),
    ],
)
def test_invalid_event_is_400_naming_field(env: Env, path: str, body: dict[str, object], field: str) -> None:
    r = env.post(path, body)
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field
    assert field in r.json()["error"]
    assert env.events() == []


def test_invalid_json_is_400(env: Env) -> None:
    r = env.http.post("/v1/track", content=b"{not json", headers=_basic(env.key))
    assert r.status_code == 400 and r.json()["field"] == "body"


# ------------------------------------------------------------------------------------------------ limits


def test_event_over_32kb_is_413(env: Env) -> None:
    r = env.post("/v1/track", {"userId": "u", "event": "E", "properties": {"blob": "x" * 33_000}})
    assert r.status_code == 413
    assert "32 KB" in r.json()["error"]


def test_batch_over_500kb_is_413(env: Env) -> None:
    batch = [{"type": "track", "userId": "u", "event": "E", "properties": {"b": "x" * 20_000}} for _ in range(30)]
    r = env.post("/v1/batch", {"batch": batch})
    assert r.status_code == 413
    assert "500 KB" in r.json()["error"]
    assert env.events() == []


def test_batch_over_2500_events_is_413(env: Env) -> None:
    r = env.post("/v1/batch", {"batch": [{"type": "track", "userId": "u", "event": "E"}] * 2501})
    assert r.status_code == 413
    assert "2500" in r.json()["error"]


def test_event_in_batch_over_32kb_is_rejected_alone(env: Env) -> None:
    batch = [
        {"type": "track", "userId": "u", "event": "Big", "properties": {"b": "x" * 33_000}},
        {"type": "track", "userId": "u", "event": "Small"},
    ]
    r = env.post("/v1/batch", {"batch": batch})
    assert r.status_code == 200
    assert [x["index"] for x in r.json()["rejected"]] == [0]
    assert [e for _, _, e, *_ in env.events()] == ["Small"]


def test_message_id_limit(env: Env) -> None:
    r = env.post("/v1/track", {"userId": "u", "event": "E", "messageId": "m" * 100})
    assert r.status_code == 400
    assert r.json()["field"] == "messageId" and "100" in r.json()["error"]
    assert env.post("/v1/track", {"userId": "u", "event": "E", "messageId": "m" * 99}).status_code == 200


def test_missing_message_id_is_generated(env: Env) -> None:
    assert env.post("/v1/track", {"userId": "u", "event": "E"}).status_code == 200
    assert env.post("/v1/track", {"userId": "u", "event": "E"}).status_code == 200
    ids = [m for m, *_ in env.events()]
    assert len(ids) == 2 and len(set(ids)) == 2 and all(uuid.UUID(str(m)) for m in ids)


# ------------------------------------------------------------------------------------------------ semantics


def test_same_message_id_is_stored_once_across_requests(env: Env) -> None:
    body = {"userId": "u", "event": "Paid", "messageId": "retry-1"}
    for _ in range(3):
        assert env.post("/v1/track", body).status_code == 200
    r = env.post("/v1/batch", {"batch": [{**body, "type": "track"}, {**body, "type": "track"}]})
    assert r.status_code == 200
    assert [m for m, *_ in env.events()] == ["retry-1"]


def test_partial_batch_lands_valid_events_and_lists_rejections(env: Env) -> None:
    batch = [
        {"type": "track", "userId": "u", "event": "A", "messageId": "ok-0"},
        {"type": "track", "userId": "u", "messageId": "bad-1"},
        {"type": "launch", "userId": "u"},
        "not an object",
        {"type": "alias", "userId": "u", "messageId": "bad-4"},
        {"type": "identify", "anonymousId": "x", "messageId": "ok-5"},
    ]
    r = env.post("/v1/batch", {"batch": batch})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accepted"] == 2
    assert [(x["index"], x["field"]) for x in body["rejected"]] == [
        (1, "event"),
        (2, "type"),
        (3, "message"),
        (4, "previousId"),
    ]
    assert body["rejected"][0]["messageId"] == "bad-1"
    assert sorted(m for m, *_ in env.events()) == ["ok-0", "ok-5"]


def test_all_invalid_batch_is_400_with_list(env: Env) -> None:
    r = env.post("/v1/batch", {"batch": [{"type": "track", "userId": "u"}]})
    assert r.status_code == 400
    assert r.json()["rejected"][0]["field"] == "event"


def test_clock_skew_is_corrected(env: Env) -> None:
    # The client's clock is 1 hour behind: it stamped the event 5 s before sending, both in its own clock.
    client_now = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
    original = client_now - timedelta(seconds=5)
    body = {"userId": "u", "event": "E", "messageId": "skew", "timestamp": _iso(original), "sentAt": _iso(client_now)}
    before = datetime.now(UTC).replace(tzinfo=None)
    assert env.post("/v1/track", body).status_code == 200
    after = datetime.now(UTC).replace(tzinfo=None)
    ts, orig, sent, received = env.ctx.warehouse.fetch(
        "SELECT timestamp, original_timestamp, sent_at, received_at FROM events WHERE message_id = 'skew'"
    )[0]
    assert before <= received <= after
    assert orig == original.replace(tzinfo=None) and sent == client_now.replace(tzinfo=None)
    assert ts == received - timedelta(seconds=5)


def test_timestamp_without_sent_at_is_kept_and_batch_sent_at_applies(env: Env) -> None:
    old = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    assert (
        env.post("/v1/track", {"userId": "u", "event": "E", "messageId": "t1", "timestamp": _iso(old)}).status_code
        == 200
    )
    sent = old + timedelta(seconds=10)
    r = env.post(
        "/v1/batch",
        {
            "sentAt": _iso(sent),
            "batch": [{"type": "track", "userId": "u", "event": "E", "messageId": "t2", "timestamp": _iso(old)}],
        },
    )
    assert r.status_code == 200
    rows = dict(env.ctx.warehouse.fetch("SELECT message_id, received_at - timestamp FROM events"))
    ts1 = env.ctx.warehouse.fetch("SELECT timestamp FROM events WHERE message_id = 't1'")[0][0]
    assert ts1 == old.replace(tzinfo=None)
    assert rows["t2"] == timedelta(seconds=10)


def test_batch_context_is_merged_into_events(env: Env) -> None:
    r = env.post(
        "/v1/batch",
        {
            "context": {"library": {"name": "x"}, "ip": "1.2.3.4"},
            "batch": [{"type": "track", "userId": "u", "event": "E", "messageId": "c1", "context": {"ip": "5.6.7.8"}}],
        },
    )
    assert r.status_code == 200
    ctx_json = env.ctx.warehouse.fetch("SELECT context FROM events WHERE message_id = 'c1'")[0][0]
    assert json.loads(str(ctx_json)) == {"library": {"name": "x"}, "ip": "5.6.7.8"}


def test_identity_observations_written_with_events(env: Env) -> None:
    assert (
        env.post(
            "/v1/identify",
            {
                "userId": "u9",
                "anonymousId": "a9",
                "messageId": "i1",
                "traits": {
                    "phone": "138 0013 8000",
                    "email": "Wang@Example.cn",
                    "unionid": "UN1",
                    "name": "王芳",
                    "mobile": "bad",
                },
            },
        ).status_code
        == 200
    )
    assert env.post("/v1/identify", {"userId": "u9", "messageId": "i1"}).status_code == 200  # retry: no new obs
    assert env.post("/v1/track", {"userId": "u9", "event": "E", "messageId": "t-only-user"}).status_code == 200
    assert env.post("/v1/page", {"userId": "u9", "anonymousId": "a10", "messageId": "p1"}).status_code == 200
    assert env.post("/v1/alias", {"previousId": "old-user", "userId": "u9", "messageId": "al1"}).status_code == 200
    rows = env.ctx.warehouse.fetch(
        "SELECT source_kind, source_ref, identifiers, traits FROM identity_observations ORDER BY obs_id"
    )
    assert [r[1] for r in rows] == ["i1", "p1", "al1"]
    assert rows[0][0] == "event"
    ids = {(i["type"], i["value"]) for i in rows[0][2]}
    assert ids == {
        ("user_id", "u9"),
        ("anonymous_id", "a9"),
        ("phone", "+8613800138000"),
        ("email", "wang@example.cn"),
        ("unionid", "UN1"),
    }
    assert json.loads(str(rows[0][3]))["name"] == "王芳"
    assert {(i["type"], i["value"]) for i in rows[1][2]} == {("user_id", "u9"), ("anonymous_id", "a10")}
    assert {(i["type"], i["value"]) for i in rows[2][2]} == {("user_id", "old-user"), ("user_id", "u9")}


def test_gzip_body_is_accepted(env: Env) -> None:
    import gzip

    raw = json.dumps({"batch": [{"type": "track", "userId": "u", "event": "Z", "messageId": "gz"}]}).encode()
    r = env.http.post(
        "/v1/batch",
        content=gzip.compress(raw),
        headers={**_basic(env.key), "Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    assert [m for m, *_ in env.events()] == ["gz"]


# ------------------------------------------------------------------------------------------------ rate limit


def test_rate_limit_429_with_retry_after(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "rl", rate_limit_per_second=0.5, rate_limit_burst=2)
    for env in _env(settings):
        codes = [env.post("/v1/track", {"userId": "u", "event": "E"}).status_code for _ in range(2)]
        r = env.post("/v1/track", {"userId": "u", "event": "E"})
        assert codes == [200, 200]
        assert r.status_code == 429
        assert int(r.headers["Retry-After"]) >= 1
        assert "rate limit" in r.json()["error"]
        assert len(env.events()) == 2
        # another key of the same brand has its own bucket
        _, other = write_keys.create_key(env.ctx, "acme", "other")
        assert env.post("/v1/track", {"userId": "u", "event": "E"}, key=other).status_code == 200


# ------------------------------------------------------------------------------------------------ durability


def test_200_means_durable_in_a_fresh_process(settings: Settings) -> None:
    for env in _env(settings):
        r = env.post(
            "/v1/batch",
            {"batch": [{"type": "track", "userId": "u", "event": "Durable", "messageId": f"d{i}"} for i in range(50)]},
        )
        assert r.status_code == 200
    # the context is closed now; read the DuckDB file from another process
    code = (
        "import duckdb,sys; c=duckdb.connect(sys.argv[1], read_only=True); "
        "print(c.execute(\"select count(*) from events where event='Durable'\").fetchone()[0])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, settings.warehouse_file], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "50"
    fresh = Context.open(settings)
    try:
        assert fresh.warehouse.fetch("SELECT count(*) FROM events")[0][0] == 50
    finally:
        fresh.close()


# ------------------------------------------------------------------------------------------------ real client


def test_official_segment_python_client_works_unchanged(env: Env) -> None:
    from segment.analytics import Client

    errors: list[object] = []
    client = Client(env.key, host=env.base, sync_mode=True, on_error=lambda e, b: errors.append(e))
    client.identify("seg-user", {"email": "seg@example.cn", "name": "李雷"}, anonymous_id="seg-anon")
    client.track("seg-user", "Order Completed", {"revenue": 12.5})
    client.page("seg-user", "Docs", "Install")
    client.screen("seg-user", "App", "Home")
    client.group("seg-user", "org-1", {"name": "Org"})
    client.alias("seg-anon", "seg-user")
    client.flush()
    assert errors == []
    rows = env.events()
    assert sorted(t for _, t, *_ in rows) == ["alias", "group", "identify", "page", "screen", "track"]
    assert {r[4] for r in rows} == {"seg-user"}
    track = next(r for r in rows if r[1] == "track")
    assert json.loads(str(track[8])) == {"revenue": 12.5}
    # the client's queued (async) mode with gzip goes through the same endpoint
    async_client = Client(env.key, host=env.base, gzip=True, on_error=lambda e, b: errors.append(e))
    for i in range(20):
        async_client.track("seg-user", "Queued", {"i": i})
    async_client.flush()
    async_client.join()
    assert errors == []
    assert env.ctx.warehouse.fetch("SELECT count(*) FROM events WHERE event = 'Queued'")[0][0] == 20


def test_oneid_resolves_ingested_identifiers_off_the_ack_path(env: Env) -> None:
    import time

    from siyu.domain.models import Identity
    from siyu.services import oneid

    r = env.post(
        "/v1/identify",
        {"userId": "one-u", "anonymousId": "one-a", "traits": {"phone": "13900001111", "name": "张三"}},
    )
    assert r.status_code == 200
    assert env.post("/v1/alias", {"previousId": "old-one", "userId": "one-u"}).status_code == 200
    deadline = time.monotonic() + 20
    found: list[str | None] = []
    while time.monotonic() < deadline:
        found = [
            oneid.customer_of(env.ctx, "acme", Identity(t, v))
            for t, v in [("user_id", "one-u"), ("anonymous_id", "one-a"), ("phone", "+8613900001111")]
        ]
        if all(found):
            break
        time.sleep(0.2)
    assert all(found) and len(set(found)) == 1, found


def test_a_nul_character_in_one_message_does_not_refuse_the_batch(env: Env) -> None:
    """A NUL inside one message of a batch costs that message at most: the other messages land."""
    batch = [
        {"type": "track", "userId": "u", "event": "A", "messageId": "ok-0"},
        {"type": "track", "userId": "u\u0000x", "event": "A", "messageId": "nul-1"},
        {"type": "track", "userId": "u", "event": "B\u0000", "properties": {"p": "a\u0000b"}, "messageId": "nul-2"},
        {"type": "identify", "anonymousId": "x", "messageId": "ok-3"},
    ]
    r = env.post("/v1/batch", {"batch": batch})
    assert r.status_code == 200, r.text
    stored = {m for m, *_ in env.events()}
    assert {"ok-0", "ok-3"} <= stored
    refused = {x["messageId"] for x in r.json()["rejected"]}
    assert stored | refused == {"ok-0", "nul-1", "nul-2", "ok-3"} and not stored & refused
