"""schemathesis over the OneID operations (/api/oneid/*) of a live server: no 5xx, every 4xx in the project's shape
(the split of an identifier without observations was a 500). Generated requests (valid and invalid) as an admin,
plus splits of real customers' identifiers, including one no observation shows."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from siyu.api.app import create_app
from siyu.config import Settings
from siyu.services.context import Context
from siyu.services.demo import DemoConfig, seed_demo
from tests.support.live import live_server
from tests.test_hostile_openapi import project_shape

EXAMPLES = 40  # per operation and generation mode


@pytest.fixture(scope="module")
def api() -> Iterator[tuple[str, dict[str, str], Context]]:
    with tempfile.TemporaryDirectory() as tmp:
        ctx = Context.open(Settings(data_dir=Path(tmp) / "data"))
        seed_demo(ctx, DemoConfig(customers=200))
        with live_server(create_app(ctx, with_console=False)) as base:
            resp = httpx.post(f"{base}/api/auth/login", json={"username": "admin", "password": "siyu-admin"})
            yield base, {"Authorization": f"Bearer {resp.json()['token']}"}, ctx
        ctx.close()


@pytest.mark.slow  # ≈ 40 generated requests per operation and mode (about a minute on 2 cores)
def test_oneid_operations_never_answer_5xx(api: tuple[str, dict[str, str], Context]) -> None:
    base, headers, _ = api
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    problems: list[str] = []
    calls = 0
    for result in schema.get_all_operations():
        op = result.ok()
        if not op.path.startswith("/api/oneid"):
            continue
        modes = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
        strategy = st.one_of(*(op.as_strategy(generation_mode=m) for m in modes))

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(strategy)
        def call(case: Any) -> None:
            nonlocal calls
            resp = case.call(base_url=base, headers=headers, timeout=60)
            calls += 1
            if resp.status_code >= 500 or (resp.status_code >= 400 and not project_shape(resp.status_code, resp)):
                problems.append(f"{resp.status_code} {case.method} {case.formatted_path} -> {resp.text[:200]}")

        call()
    assert calls >= 3 * EXAMPLES  # conflicts, split, lookup
    assert not problems, problems


def test_splits_of_real_customers_never_answer_5xx(api: tuple[str, dict[str, str], Context]) -> None:
    base, headers, ctx = api
    rows = ctx.warehouse.fetch(
        "SELECT customer_id, list(id_type ORDER BY id_type), list(id_value ORDER BY id_type) FROM identities "
        "WHERE brand_id = 'demo' GROUP BY 1 HAVING count(*) >= 2 ORDER BY 1 LIMIT 8"
    )
    assert rows
    cid0 = rows[0][0]
    with ctx.warehouse.transaction() as tx:  # an identifier OneID holds without any observation
        tx.execute(
            "INSERT INTO identities (brand_id, id_type, id_value, customer_id) VALUES ('demo', 'member_id', 'X-1', ?)",
            [cid0],
        )
    cases: list[tuple[str, list[tuple[str, str]]]] = [(cid0, [("member_id", "X-1")])]
    for cid, types, values in rows:
        pairs = list(zip(types, values, strict=True))
        cases += [(cid, pairs[:1]), (cid, pairs), (cid, pairs[-1:] * 2), ("c_" + cid[2:][::-1], pairs[:1])]
    statuses = []
    for cid, idents in cases:
        body = {"customer_id": cid, "identifiers": [{"type": t, "value": v} for t, v in idents], "reason": "fuzz"}
        resp = httpx.post(f"{base}/api/oneid/split", json=body, headers=headers, timeout=60)
        assert resp.status_code < 500, resp.text
        if resp.status_code >= 400:
            assert project_shape(resp.status_code, resp), resp.text
        statuses.append(resp.status_code)
    assert statuses[0] == 400 and 200 in statuses and 404 in statuses
