"""Quiz for points (one attempt per person per quiz per local day, also under concurrency) and member tiers
(points / spend thresholds, upgrade, the three downgrade rules, scheme validation)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest

from siyu.domain.engagement.tiers import next_tier, parse_scheme
from siyu.services import engagement
from siyu.services.brands import ensure_brand
from siyu.services.context import Context
from siyu.services.errors import Conflict, NotFound, SiyuError
from siyu.services.rewards import points

B = "qt"
QUIZ = {
    "questions": [
        {"id": "q1", "text": "私域的核心是？", "options": ["流量", "关系", "广告"], "answer": 1},
        {"id": "q2", "text": "签到连续几天有奖？", "options": ["3", "5", "7"], "answer": 2},
        {"id": "q3", "text": "导购是？", "options": ["guide", "robot"], "answer": 0},
    ],
    "points_per_correct": 20,
}


@pytest.fixture
def qctx(ctx: Context) -> Context:
    ensure_brand(ctx, B, "Quiz and tiers")
    return ctx


def test_quiz_one_attempt_a_day(qctx: Context) -> None:
    engagement.create_activity(qctx, B, "quiz", "知识问答", QUIZ, activity_id="qa")
    view = engagement.quiz_questions(qctx, B, "qa")
    assert all("answer" not in q for q in view["questions"]) and len(view["questions"]) == 3
    now = datetime(2026, 7, 1, 2)
    r = engagement.submit(qctx, B, "qa", "p1", {"q1": 1, "q2": 0, "q3": 0}, now=now)
    assert (r["correct"], r["points"], r["results"]) == (2, 40, {"q1": True, "q2": False, "q3": True})
    with pytest.raises(Conflict, match="already answered today"):
        engagement.submit(qctx, B, "qa", "p1", {"q1": 1, "q2": 2, "q3": 0}, now=now + timedelta(hours=10))
    nxt = engagement.submit(qctx, B, "qa", "p1", {"q1": 1, "q2": 2, "q3": 0}, now=now + timedelta(hours=23))
    assert nxt["day"] == "2026-07-02" and nxt["points"] == 60
    assert points.balance(qctx, B, "p1")["balance"] == 100
    for answers, field in (({"q9": 0}, "answers.q9"), ({"q1": 5}, "answers.q1")):
        with pytest.raises(SiyuError) as info:
            engagement.submit(qctx, B, "qa", "p2", answers, now=now)
        assert info.value.field == field
    with pytest.raises(SiyuError) as info:
        engagement.create_activity(
            qctx, B, "quiz", "bad", {**QUIZ, "questions": [{**QUIZ["questions"][0], "answer": 3}]}
        )
    assert info.value.field == "config.questions.0.answer"

    got: list[str] = []
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        try:
            engagement.submit(qctx, B, "qa", "p3", {"q1": 1}, now=now)
            got.append("ok")
        except Conflict:
            got.append("dup")

    ts = [threading.Thread(target=work) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert got.count("ok") == 1 and points.balance(qctx, B, "p3")["balance"] == 20


SCHEME = {
    "basis": "points",
    "window_days": 30,
    "downgrade": "recompute",
    "tiers": [
        {"key": "silver", "name": "银卡"},
        {"key": "gold", "name": "金卡", "min_points": 100, "min_spend": 1000},
        {"key": "black", "name": "黑卡", "min_points": 500, "min_spend": 5000},
    ],
}


def test_tier_scheme_validation_and_rules() -> None:
    for bad, msg in (
        ({**SCHEME, "tiers": SCHEME["tiers"][1:]}, r"first \(lowest\) tier"),
        ({**SCHEME, "tiers": [SCHEME["tiers"][0], SCHEME["tiers"][2], SCHEME["tiers"][1]]}, "from the lowest"),
        ({**SCHEME, "basis": "vibes"}, "scheme.basis"),
    ):
        with pytest.raises(SiyuError, match=msg):
            parse_scheme(bad)
    s = parse_scheme(SCHEME)
    assert next_tier(s, None, 120, 0) == "gold" and next_tier(s, "gold", 600, 0) == "black"
    assert next_tier(s, "black", 0, 0) == "silver"
    assert next_tier(s.model_copy(update={"downgrade": "one_step"}), "black", 0, 0) == "gold"
    assert next_tier(s.model_copy(update={"downgrade": "never"}), "black", 0, 0) == "black"
    either = s.model_copy(update={"basis": "either"})
    assert next_tier(either, None, 120, 6000) == "black" and next_tier(either, None, 0, 999) == "silver"


def test_recompute_upgrades_and_downgrades(qctx: Context) -> None:
    with pytest.raises(NotFound, match="no member tier scheme"):
        engagement.recompute(qctx, B)
    engagement.set_scheme(qctx, B, SCHEME)
    t0 = datetime(2026, 8, 1)
    points.earn(qctx, B, "a", 150, source="t", now=t0)
    points.earn(qctx, B, "b", 600, source="t", now=t0)
    points.earn(qctx, B, "c", 20, source="t", now=t0)
    r = engagement.recompute(qctx, B, now=t0 + timedelta(days=1))
    assert r["members"] == 3 and {c["customer_id"]: c["to"] for c in r["changes"]} == {
        "a": "gold",
        "b": "black",
        "c": "silver",
    }
    points.earn(qctx, B, "c", 100, source="t", now=t0 + timedelta(days=20))
    r = engagement.recompute(qctx, B, now=t0 + timedelta(days=21))
    assert r["changes"] == [{"customer_id": "c", "from": "silver", "to": "gold"}] and r["upgraded"] == 1
    # 40 days on, the points of day 0 left the 30-day window: a and b fall (recompute), c keeps gold (day 20)
    r = engagement.recompute(qctx, B, now=t0 + timedelta(days=40))
    assert {c["customer_id"]: (c["from"], c["to"]) for c in r["changes"]} == {
        "a": ("gold", "silver"),
        "b": ("black", "silver"),
    }
    assert r["downgraded"] == 2
    assert engagement.tier_of(qctx, B, "b")["previous"] == "black"  # type: ignore[index]
    assert engagement.tier_counts(qctx, B) == {"silver": 2, "gold": 1}


def test_recompute_on_spend(qctx: Context) -> None:
    cur = qctx.warehouse.cursor()
    t = datetime(2026, 9, 1)
    for cid, phone in (("s1", "+8613000000001"), ("s2", "+8613000000002")):
        cur.execute("INSERT INTO identities VALUES (?, 'phone', ?, ?, ?, ?)", [B, phone, cid, t, t])
    orders = [("o1", "+8613000000001", 800, "paid"), ("o2", "+8613000000001", 400, "paid")]
    orders += [("o3", "+8613000000002", 6000, "refunded"), ("o4", "+8613000000002", 300, "paid")]
    for oid, ref, amount, status in orders:
        cur.execute(
            "INSERT INTO orders (brand_id, order_id, customer_ref_type, customer_ref, ordered_at, amount, status) "
            "VALUES (?, ?, 'phone', ?, ?, ?, ?)",
            [B, oid, ref, t, amount, status],
        )
    engagement.set_scheme(qctx, B, {**SCHEME, "basis": "spend"})
    r = engagement.recompute(qctx, B, now=t + timedelta(days=2))
    assert {c["customer_id"]: c["to"] for c in r["changes"]} == {"s1": "gold", "s2": "silver"}  # refund left out
    assert engagement.tier_of(qctx, B, "s1")["spend_basis"] == pytest.approx(1200)  # type: ignore[index]


def test_daily_job_expires_points_and_recomputes_tiers(qctx: Context) -> None:
    from siyu.services.engagement.scheduled import daily
    from siyu.workers.schedule import SCHEDULES

    assert any(s.target == "siyu.services.engagement.scheduled:daily" for s in SCHEDULES)
    engagement.set_scheme(qctx, B, SCHEME)
    t0 = datetime(2026, 10, 1)
    points.earn(qctx, B, "d1", 150, source="t", valid_days=10, now=t0)
    assert daily(qctx, now=t0 + timedelta(days=1))[B] == {
        "expired": 0,
        "tiers": {"members": 1, "upgraded": 0, "downgraded": 0},
    }
    assert engagement.tier_of(qctx, B, "d1")["tier"] == "gold"  # type: ignore[index]
    out = daily(qctx, now=t0 + timedelta(days=11))[B]
    assert out["expired"] == 150 and points.ledger_sum(qctx, B, "d1") == 0
    # tiers count points earned in the window (expiry does not undo having earned them)
    assert engagement.tier_of(qctx, B, "d1")["tier"] == "gold"  # type: ignore[index]
