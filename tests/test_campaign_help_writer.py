"""The help path's group commit: concurrent helps share transactions, stay one per person, keep the sharer's
counter exact and issue a tier's stock-limited reward never past its stock; one failing job in a batch does not
undo the others."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from siyu.services import brands, rewards
from siyu.services import campaigns as C
from siyu.services.campaigns import help_writer
from siyu.services.context import Context

B = "burstb"
NOW = datetime(2026, 11, 5, 4, 0)


def _campaign(ctx: Context) -> str:
    brands.create_brand(ctx, B, "Burst brand")
    rewards.create_reward(
        ctx, B, {"id": "cup", "name": "cup", "kind": "coupon", "config": {"face_value": 5}, "stock": 3}
    )
    cid = C.create(
        ctx,
        B,
        {
            "kind": "assist",
            "name": "助力",
            "starts_at": "2026-11-01T00:00:00",
            "ends_at": "2026-11-12T00:00:00",
            "assist": {"tiers": [{"threshold": 2, "reward_id": "cup"}, {"threshold": 4, "reward_id": "cup"}]},
            "anti_abuse": {"device_per_day": 1000, "ip_per_hour": 1000, "person_per_day": 1000},
        },
    )["id"]
    C.launch(ctx, B, cid)
    return cid


def test_concurrent_helps_are_batched_once_per_person_and_never_oversell(ctx: Context) -> None:
    cid = _campaign(ctx)
    sharers = [C.join(ctx, B, cid, C.parse_identity("unionid", f"s{i}"), now=NOW) for i in range(4)]
    results: list[dict[str, Any]] = []
    lock = threading.Lock()
    start = threading.Barrier(24)

    def helper(i: int) -> None:
        start.wait()
        for _ in range(2):  # every person taps twice
            got = C.help(
                ctx, B, cid, sharers[i % 4]["token"], C.parse_identity("unionid", f"h{i}"), ip=f"10.0.0.{i}", now=NOW
            )
            with lock:
                results.append(got)

    threads = [threading.Thread(target=helper, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    states = [r["state"] for r in results]
    assert states.count("counted") == 16  # 4 sharers × 4 helps (top tier), each person counted at most once
    assert {r["reason"] for r in results if r["state"] == "rejected"} == {"already_helped", "sharer_done"}
    w = help_writer.writer(ctx)
    assert w is not None and w.jobs >= 48 and w.batches < w.jobs  # helps shared commits
    with ctx.engine.connect() as con:
        twice = con.execute(
            text(
                "SELECT count(*) FROM (SELECT helper_key FROM campaign_helps WHERE state = 'counted' "
                "GROUP BY helper_key HAVING count(*) > 1) t"
            )
        ).scalar()
        off = con.execute(
            text(
                "SELECT count(*) FROM campaign_participants p WHERE p.helps_counted != (SELECT count(*) FROM "
                "campaign_helps h WHERE h.sharer_id = p.id AND h.state = 'counted')"
            )
        ).scalar()
        stock = con.execute(text("SELECT stock_left, granted FROM rewards WHERE id = 'cup'")).one()
        grants = con.execute(text("SELECT count(*) FROM reward_grants WHERE reward_id = 'cup'")).scalar()
    assert twice == 0 and off == 0
    assert tuple(stock) == (0, 3) and grants == 3  # 8 tiers reached, 3 in stock: never past it
    for s in sharers:
        prog = C.progress(ctx, B, s["id"])
        assert prog["helps_counted"] == 4 and prog["tiers_reached"] == 2  # every tier's payout ran (or failed)
        assert len(prog["rewards"]) == 2


def test_a_failing_job_is_undone_alone(ctx: Context) -> None:
    cid = _campaign(ctx)
    w = help_writer.HelpWriter(ctx.engine, batch=64)
    ins = text("INSERT INTO campaign_help_keys (campaign_id, key, help_id) VALUES (:c, :k, 1)")
    try:
        gate = threading.Event()
        errors: list[BaseException] = []

        def blocker(con: Connection) -> None:
            gate.wait(5)  # hold the writer so the next jobs queue up into one batch

        def job(key: str) -> None:
            try:
                w.submit(lambda con: con.execute(ins, {"c": cid, "k": key}))
            except IntegrityError as exc:
                errors.append(exc)

        first = threading.Thread(target=w.submit, args=(blocker,))
        first.start()
        threads = [threading.Thread(target=job, args=(k,)) for k in ("a", "b", "a", "c")]
        for t in threads:
            t.start()
        gate.set()
        for t in [first, *threads]:
            t.join()
    finally:
        w.close()
    with ctx.engine.connect() as con:
        keys = sorted(
            con.execute(text("SELECT key FROM campaign_help_keys WHERE campaign_id = :c"), {"c": cid}).scalars()
        )
    assert keys == ["a", "b", "c"] and len(errors) == 1


def test_one_batch_wakes_coroutines_of_two_loops_and_a_thread_with_their_own_results(ctx: Context) -> None:
    cid = _campaign(ctx)
    w = help_writer.HelpWriter(ctx.engine, batch=64)
    ins = text("INSERT INTO campaign_help_keys (campaign_id, key, help_id) VALUES (:c, :k, 1) RETURNING key")
    gate = threading.Event()
    got: dict[str, Any] = {}

    def add(key: str) -> Any:
        return lambda con: con.execute(ins, {"c": cid, "k": key}).scalar_one()

    async def on_loop(keys: list[str]) -> list[Any]:
        return await asyncio.gather(*(w.submit_async(add(k)) for k in keys), return_exceptions=True)

    def loop_thread(name: str, keys: list[str]) -> None:
        got[name] = asyncio.run(on_loop(keys))

    def blocker(con: Connection) -> None:
        gate.wait(5)  # hold the writer so the jobs below queue up into one batch

    try:
        first = threading.Thread(target=w.submit, args=(blocker,))
        first.start()
        threads = [
            threading.Thread(target=loop_thread, args=("L1", ["a", "b", "a"])),
            threading.Thread(target=loop_thread, args=("L2", ["c", "d"])),
            threading.Thread(target=lambda: got.setdefault("T", w.submit(add("e")))),
        ]
        for t in threads:
            t.start()
        while w._q.qsize() < 6:  # every job queued behind the blocker
            time.sleep(0.01)
        batches = w.batches
        gate.set()
        for t in [first, *threads]:
            t.join(10)
    finally:
        w.close()
    assert w.batches - batches == 2  # the blocker's batch and one batch with all six jobs
    assert got["L1"][:2] == ["a", "b"] and isinstance(got["L1"][2], IntegrityError)  # "a" twice: only it fails
    assert got["L2"] == ["c", "d"] and got["T"] == "e"
