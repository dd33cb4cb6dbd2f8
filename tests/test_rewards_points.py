"""Points ledger: FIFO expiry by lot checked against an independent simulation, balance = sum of the ledger,
clear errors, idempotent keys, and concurrent spends that never go negative."""

from __future__ import annotations

import random
import threading
from datetime import datetime, timedelta

import pytest

from siyu.services.brands import ensure_brand
from siyu.services.context import Context
from siyu.services.errors import SiyuError
from siyu.services.rewards import InsufficientPoints, points

B = "pts"
T0 = datetime(2026, 1, 1, 8)


@pytest.fixture
def pctx(ctx: Context) -> Context:
    ensure_brand(ctx, B, "Points test")
    return ctx


class Model:
    """An independent model of the rules: lots expire at their date; a debit takes from the lot expiring first."""

    def __init__(self) -> None:
        self.lots: list[list] = []  # [expires_at, seq, remaining]
        self.expired = 0

    def expire(self, now: datetime) -> None:
        for lot in self.lots:
            if lot[0] <= now and lot[2] > 0:
                self.expired += lot[2]
                lot[2] = 0

    def earn(self, now: datetime, pts: int, days: int) -> None:
        self.expire(now)
        self.lots.append([now + timedelta(days=days), len(self.lots), pts])

    def spend(self, now: datetime, pts: int) -> bool:
        self.expire(now)
        if self.balance() < pts:
            return False
        for lot in sorted(self.lots, key=lambda x: (x[0], x[1])):
            take = min(lot[2], pts)
            lot[2] -= take
            pts -= take
        return True

    def balance(self) -> int:
        return sum(lot[2] for lot in self.lots)


def test_fifo_expiry_matches_an_independent_model(pctx: Context) -> None:
    rng = random.Random(7)
    model = Model()
    now = T0
    refused = 0
    for step in range(150):
        now += timedelta(hours=rng.randint(1, 72))
        if rng.random() < 0.55:
            pts, days = rng.randint(1, 200), rng.choice([3, 10, 30, 90])
            points.earn(pctx, B, "c1", pts, source="test", ref=f"e{step}", valid_days=days, now=now)
            model.earn(now, pts, days)
        else:
            pts = rng.randint(1, 250)
            ok = model.spend(now, pts)
            if ok:
                points.spend(pctx, B, "c1", pts, source="order", ref=f"s{step}", now=now)
            else:
                refused += 1
                with pytest.raises(InsufficientPoints) as info:
                    points.spend(pctx, B, "c1", pts, source="order", ref=f"s{step}", now=now)
                assert info.value.field == "points" and "fewer than" in info.value.message
        assert points.balance(pctx, B, "c1", now=now)["balance"] == model.balance(), step
    assert refused > 5 and model.expired > 0  # the sequence exercised both rules
    assert points.ledger_sum(pctx, B, "c1") == model.balance()
    entries = points.ledger(pctx, B, "c1", limit=500)
    assert -sum(e["delta"] for e in entries if e["kind"] == "expire") == model.expired
    assert all(e["source"] for e in entries)
    # each debit names the lots it took, and they add up to the debit
    for e in entries:
        if e["kind"] in ("spend", "expire"):
            assert sum(x["points"] for x in e["lots"]) == -e["delta"]


def test_spend_takes_the_lot_expiring_first(pctx: Context) -> None:
    a = points.earn(pctx, B, "c2", 100, source="t", valid_days=90, now=T0)
    b = points.earn(pctx, B, "c2", 50, source="t", valid_days=10, now=T0 + timedelta(days=1))
    out = points.spend(pctx, B, "c2", 70, source="order", ref="o1", now=T0 + timedelta(days=2))
    assert out["lots"] == [{"lot": b["id"], "points": 50}, {"lot": a["id"], "points": 20}]
    # after 90 days the rest of lot a expires
    assert points.balance(pctx, B, "c2", now=T0 + timedelta(days=91))["balance"] == 0


def test_keys_and_errors(pctx: Context) -> None:
    e1 = points.earn(pctx, B, "c3", 10, source="t", key="k1")
    e2 = points.earn(pctx, B, "c3", 10, source="t", key="k1")
    assert e1["id"] == e2["id"] and points.balance(pctx, B, "c3")["balance"] == 10
    for bad, field in ((0, "points"), (-5, "points"), (10**9, "points")):
        with pytest.raises(SiyuError) as info:
            points.earn(pctx, B, "c3", bad, source="t")
        assert info.value.field == field
    with pytest.raises(SiyuError) as info:
        points.earn(pctx, B, "c3", 5, source="")
    assert info.value.field == "source"
    with pytest.raises(InsufficientPoints):
        points.spend(pctx, B, "nobody", 1, source="order")


def test_concurrent_spends_never_go_negative(pctx: Context) -> None:
    points.earn(pctx, B, "c4", 60, source="t", valid_days=30)
    points.earn(pctx, B, "c4", 40, source="t", valid_days=60)
    ok: list[dict] = []
    refused: list[Exception] = []
    barrier = threading.Barrier(20)

    def work(i: int) -> None:
        barrier.wait()
        try:
            ok.append(points.spend(pctx, B, "c4", 7, source="order", ref=f"o{i}"))
        except InsufficientPoints as exc:
            refused.append(exc)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(20)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert len(ok) == 14 and len(refused) == 6  # 14 × 7 = 98 ≤ 100 < 105
    assert points.balance(pctx, B, "c4")["balance"] == 2 == points.ledger_sum(pctx, B, "c4")
    lots = [e for e in points.ledger(pctx, B, "c4") if e["kind"] == "earn"]
    assert sorted(e["remaining"] for e in lots) == [0, 2]


def test_expire_due_for_the_brand(pctx: Context) -> None:
    points.earn(pctx, B, "c5", 30, source="t", valid_days=5, now=T0)
    points.earn(pctx, B, "c6", 20, source="t", valid_days=5, now=T0)
    points.earn(pctx, B, "c6", 7, source="t", valid_days=50, now=T0)
    assert points.expire_due(pctx, B, now=T0 + timedelta(days=6)) == 50
    assert points.expire_due(pctx, B, now=T0 + timedelta(days=6)) == 0
    assert points.ledger_sum(pctx, B, "c6") == 7
