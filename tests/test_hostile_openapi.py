"""schemathesis over the whole OpenAPI spec of a live server: no 5xx anywhere, every 4xx in the project's shape.

The fast tests run a few generated requests (valid and invalid) per operation as the admin and one anonymous request
per operation; the slow test runs many more. Regression tests pin the 5xx the fuzzing found.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from siyu.api.app import create_app
from siyu.services.demo import DemoConfig
from tests.support.live import live_server
from tests.support.stores import open_demo

# HTML pages for a browser (the guide's WeCom sidebar): their 4xx are pages, not JSON.
HTML_PAGES = {"/sidebar/{brand_id}/", "/sidebar/{brand_id}/c/{customer_id}", "/sidebar/{brand_id}/g/{chat_id}"}
HTML_PAGES |= {"/sidebar/{brand_id}/ext/{external_userid}", "/sidebar/{brand_id}/link"}
# Operations reachable without a console login (each has its own credential or none).
ANONYMOUS_OK = {"/healthz", "/api/auth/login", "/api/auth/logout"}
ANONYMOUS_PREFIXES = ("/v1/", "/sidebar/", "/api/wecom/callback")


@dataclass
class Findings:
    """What a sweep found: server errors and 4xx answers not in the project's shape, per operation."""

    server_errors: dict[str, list[str]] = field(default_factory=dict)
    bad_4xx: dict[str, list[str]] = field(default_factory=dict)
    calls: int = 0
    operations: int = 0  # in the spec
    called: set[str] = field(default_factory=set)  # operations that got at least one request


@dataclass
class Api:
    base: str
    headers: dict[str, str]


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    """A live server over a fresh demo brand (200 customers), with an admin token."""
    with tempfile.TemporaryDirectory() as tmp:
        ctx = open_demo(Path(tmp) / "data", DemoConfig(customers=200))
        with live_server(create_app(ctx, with_console=False)) as base:
            resp = httpx.post(f"{base}/api/auth/login", json={"username": "admin", "password": "siyu-admin"})
            yield Api(base, {"Authorization": f"Bearer {resp.json()['token']}"})
        ctx.close()


def project_shape(status: int, resp: httpx.Response | Any) -> bool:
    """A 4xx body is JSON with ``error`` (what and how to fix); a 400/422 also names the ``field``."""
    try:
        body = resp.json()
    except ValueError:
        return False
    if not isinstance(body, dict) or not isinstance(body.get("error"), str) or not body["error"]:
        return False
    return status not in (400, 422) or "field" in body


def sweep(api: Api, max_examples: int, anonymous: bool = False) -> Findings:
    """Generate valid and invalid requests for every operation of /openapi.json and record what went wrong."""
    found = Findings()
    schema = schemathesis.openapi.from_url(f"{api.base}/openapi.json")
    for result in schema.get_all_operations():
        op = result.ok()
        if op.path != "/api/auth/logout":
            found.operations += 1
            _fuzz_operation(api, op, found, max_examples, anonymous)
    return found


def _fuzz_operation(api: Api, op: Any, found: Findings, max_examples: int, anonymous: bool) -> None:
    headers = {} if anonymous else api.headers
    strategy = op.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE)
    if not anonymous:
        strategy = st.one_of(strategy, op.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE))

    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def call(case: Any) -> None:
        resp = case.call(base_url=api.base, headers=headers, timeout=60)
        found.calls += 1
        found.called.add(op.label)
        what = f"{resp.status_code} {case.method} {case.formatted_path} query={case.query} -> {resp.text[:200]}"
        if resp.status_code >= 500:
            found.server_errors.setdefault(op.label, []).append(what)
        elif resp.status_code >= 400 and op.path not in HTML_PAGES and not project_shape(resp.status_code, resp):
            found.bad_4xx.setdefault(op.label, []).append(what)
        if anonymous and not _anonymous_ok(op.path) and resp.status_code not in (401, 403, 422):
            found.server_errors.setdefault(op.label, []).append("anonymous got " + what)

    call()


def _anonymous_ok(path: str) -> bool:
    return path in ANONYMOUS_OK or path.startswith(ANONYMOUS_PREFIXES)


def test_openapi_fuzz_admin_no_5xx_and_4xx_name_the_field(api: Api) -> None:
    found = sweep(api, max_examples=3)  # 2 measured no faster (generation and the server dominate); deep: 25
    print(f"{found.calls} calls over {len(found.called)} of {found.operations} operations")
    assert found.operations > 200 and len(found.called) == found.operations  # every operation was exercised
    assert not found.server_errors, found.server_errors
    assert not found.bad_4xx, found.bad_4xx


def test_openapi_anonymous_is_refused_everywhere_but_public(api: Api) -> None:
    found = sweep(api, max_examples=1, anonymous=True)
    assert found.calls > 200
    assert not found.server_errors, found.server_errors
    assert not found.bad_4xx, found.bad_4xx


@pytest.mark.slow
def test_openapi_fuzz_admin_deep(api: Api) -> None:
    found = sweep(api, max_examples=25)
    assert not found.server_errors, found.server_errors
    assert not found.bad_4xx, found.bad_4xx


# ---- regressions: what the fuzzing found ------------------------------------------------------------------------
HUGE = 10**25


@pytest.mark.parametrize(
    ("method", "path", "params", "fld"),
    [
        ("GET", "/api/metrics/rfm", {"window_days": 33519056910}, "window_days"),  # timedelta overflow
        ("GET", "/api/metrics/aipl/flow", {"l_days": HUGE}, "l_days"),
        ("GET", "/api/metrics/aipl", {"a_days": HUGE}, "a_days"),
        ("GET", f"/api/wecom/codes/{HUGE}", {}, "code_id"),  # SQLite INTEGER overflow
        ("DELETE", f"/api/wecom/codes/{HUGE}", {}, "code_id"),
        ("GET", f"/api/wecom/codes/{HUGE}/qr", {}, "code_id"),
        ("GET", "/api/wecom/codes/1/stats", {"days": HUGE}, "days"),
        ("POST", f"/api/followups/{HUGE}/close", {}, "followup_id"),
        ("DELETE", f"/api/scripts/folders/{HUGE}", {}, "folder_id"),
        ("GET", f"/api/scripts/{HUGE}", {}, "script_id"),
        ("GET", "/api/scripts", {"folder_id": HUGE}, "folder_id"),
        ("GET", "/api/points/c1/ledger", {"before_id": HUGE}, "before_id"),
        # no bound of their own: the app's out-of-range handler names the parameter (OverflowError → 422)
        ("GET", "/api/metrics/lifecycle", {"new_days": HUGE}, "new_days"),
        ("GET", "/api/journeys/tasks", {"page": 1963501572510114560}, "page"),
    ],
)
def test_huge_numbers_are_refused_naming_the_field(
    api: Api, method: str, path: str, params: dict[str, Any], fld: str
) -> None:
    resp = httpx.request(method, api.base + path, params=params, headers=api.headers, timeout=60)
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert body["field"] == fld and fld in body["error"] and "openapi.json" in body["error"]


def test_unreadable_body_and_unknown_path_in_the_project_shape(api: Api) -> None:
    h = {**api.headers, "Content-Type": "application/json"}
    resp = httpx.post(f"{api.base}/api/segments/preview", content=b'{"rules": [', headers=h)
    assert resp.status_code == 422 and resp.json()["field"] == "body", resp.text
    resp = httpx.post(f"{api.base}/api/scripts/folders", content=b"\xff\xfe{", headers=h)
    assert resp.status_code in (400, 422) and resp.json()["field"] == "body", resp.text
    resp = httpx.post(f"{api.base}/api/imports/preview", content=b"--x\r\n", headers={**api.headers})
    assert resp.status_code in (400, 422) and "field" in resp.json(), resp.text
    resp = httpx.get(f"{api.base}/api/no-such-thing", headers=api.headers)
    assert resp.status_code == 404 and "/api/no-such-thing" in resp.json()["error"]
    resp = httpx.put(f"{api.base}/healthz")
    assert resp.status_code == 405 and "PUT" in resp.json()["error"]


def test_missing_field_message_names_it(api: Api) -> None:
    resp = httpx.post(f"{api.base}/api/auth/login", json={"username": "admin"})
    assert resp.status_code == 422
    body = resp.json()
    assert body["field"] == "password" and "missing" in body["error"] and body["detail"][0]["loc"][-1] == "password"


def test_nul_characters_are_refused_naming_where(api: Api) -> None:
    """The deep run found a NUL in a JSON customer id reaching a DuckDB SQL literal (500)."""
    url = f"{api.base}/api/engagement/activities/a1/draw"
    resp = httpx.post(url, json={"customer_id": "c\x00x"}, headers=api.headers)
    assert resp.status_code == 422 and resp.json()["field"] == "body" and "NUL" in resp.json()["error"]
    resp = httpx.get(f"{api.base}/api/customers/c%00x", headers=api.headers)
    assert resp.status_code == 422 and resp.json()["field"] == "path"
    resp = httpx.get(f"{api.base}/api/customers", params={"q": "a\x00"}, headers=api.headers)
    assert resp.status_code == 422 and resp.json()["field"] == "query"
    ok = httpx.get(f"{api.base}/api/customers", params={"q": "张"}, headers=api.headers)
    assert ok.status_code == 200  # ordinary requests pass through, bodies replayed intact below
    resp = httpx.post(f"{api.base}/api/auth/login", json={"username": "admin", "password": "siyu-admin"})
    assert resp.status_code == 200


def test_an_oversized_json_body_is_413_before_it_is_buffered_whole(api: Api) -> None:
    """The NUL check reads JSON bodies; past ``MAX_JSON_BODY`` it stops reading and answers 413 naming the body."""
    from siyu.api.nul_guard import MAX_JSON_BODY

    big = b'{"customer_id": "' + b"x" * (MAX_JSON_BODY + 1) + b'"}'
    resp = httpx.post(
        f"{api.base}/api/engagement/activities/a1/draw",
        content=big,
        headers={**api.headers, "content-type": "application/json"},
        timeout=60,
    )
    assert resp.status_code == 413 and resp.json()["field"] == "body"
