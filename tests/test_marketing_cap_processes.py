"""The daily marketing cap across processes: several real processes on one state database (one SQLite file, or
PostgreSQL) claim the same customers' daily slots at once, through both channels that take them (outbox SMS and
WeCom mass sends); no customer ever holds more than the cap, and every customer ends with exactly the cap (the
claims really competed)."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from siyu.config import Settings
from siyu.domain.models import Role
from siyu.services import messaging
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.stores.state.db import make_engine

PROCESSES = 3
CAP = 2
CUSTOMERS = 25
ROUNDS = 4
ADMIN = User(0, "demo", "t", "t", Role.ADMIN, None, "zh")


def hammer(data: str, state: str, warehouse: str, customers: list[str], worker: int, start_at: float) -> None:
    """One process: from ``start_at`` on, try ROUNDS × 2 marketing messages per customer (SMS and mass send
    alternately, in a worker-specific order) and ignore the cap's refusals."""
    from siyu.services.messaging.outbox import CapReached, SendRequest, send
    from siyu.services.wecom import mass_send
    from siyu.services.wecom.audience import Reach

    ctx = Context.open(Settings(data_dir=Path(data), database_url=state, warehouse_path=warehouse))
    try:
        order = customers[worker:] + customers[:worker]
        time.sleep(max(0.0, start_at - time.time()))
        for r in range(ROUNDS):
            for i, cid in enumerate(order):
                if (i + r + worker) % 2:
                    req = SendRequest(
                        "sms",
                        recipient="13800000000",
                        customer_id=cid,
                        purpose="marketing",
                        template="SMS_71390007",
                        idempotency_key=f"w{worker}-r{r}-{cid}",
                    )
                    with contextlib.suppress(CapReached):
                        send(ctx, ADMIN, req, queue=False)
                else:
                    reach = Reach(cid, f"wm{cid}", "g1", "guide1", None)
                    mass_send.record(
                        ctx,
                        "demo",
                        key=f"w{worker}-r{r}-{cid}",
                        name="hammer",
                        chat_type="single",
                        content="hi",
                        attachments=[],
                        created_by="t",
                        single=[reach],
                    )
    finally:
        ctx.close()


def rows(state: str, sql: str) -> list[Any]:
    """Rows read straight from the state database (not through the services)."""
    engine = make_engine(state)
    try:
        with engine.connect() as con:
            return list(con.execute(sa.text(sql)))
    finally:
        engine.dispose()


def holdings(state: str) -> Counter[str]:
    """Marketing messages each customer holds today over both channels."""
    holding = "('queued', 'sent', 'unsent', 'other_mass')"
    return Counter(
        [r[0] for r in rows(state, "SELECT cap_key FROM messaging_outbox WHERE cap_slot IS NOT NULL")]
        + [r[0] for r in rows(state, f"SELECT customer_id FROM wecom_mass_recipients WHERE status IN {holding}")]
    )


@pytest.mark.slow
def test_cap_holds_across_processes(tmp_path: Path, state_url: str) -> None:
    from siyu.services.demo import DemoConfig, seed_demo

    data = tmp_path / "data"
    ctx = Context.open(Settings(data_dir=data, database_url=state_url))
    try:
        seed_demo(ctx, DemoConfig(customers=100))
        customers = [
            str(c)
            for (c,) in ctx.warehouse.cursor()
            .execute("SELECT customer_id FROM customers WHERE brand_id = 'demo' ORDER BY 1 LIMIT ?", [CUSTOMERS])
            .fetchall()
        ]
        messaging.set_marketing_cap(ctx, ADMIN, CAP)
        messaging.set_provider(
            ctx,
            ADMIN,
            "sms",
            "aliyun",
            {
                "access_key_id": "id",
                "access_key_secret": "secret",
                "sign_name": "思域",
                "endpoint": "http://127.0.0.1:9",
            },
        )
    finally:
        ctx.close()
    assert len(customers) == CUSTOMERS
    copies = []
    for i in range(PROCESSES):  # DuckDB allows one process per file: each worker reads its own copy
        copies.append(str(tmp_path / f"warehouse{i}.duckdb"))
        shutil.copy(data / "warehouse.duckdb", copies[-1])

    spawn = mp.get_context("spawn")
    start_at = time.time() + 8.0  # all workers start claiming at the same moment (after their imports)
    procs = [
        spawn.Process(target=hammer, args=(str(data), state_url, copies[i], customers, i, start_at))
        for i in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=240)
    assert [p.exitcode for p in procs] == [0] * PROCESSES

    held = holdings(state_url)
    assert set(held) == set(customers)
    assert max(held.values()) <= CAP, {c: n for c, n in held.items() if n > CAP}
    assert min(held.values()) == CAP  # every customer was offered far more than the cap
    # the refusals were recorded too: capped mass-send recipients exist, so the claims really competed
    assert rows(state_url, "SELECT count(*) FROM wecom_mass_recipients WHERE status = 'capped'")[0][0] > 0
