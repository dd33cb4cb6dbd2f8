"""The journey definition language (validation names the node id and the field), timing rules, arm assignment and
the always-valid experiment test (error rate under the null checked by simulation, looking after every customer)."""

from __future__ import annotations

import copy
import random
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from siyu.domain.journey import JourneyError, parse_journey
from siyu.domain.journey.definition import ExperimentNode, QuietHours, WaitNode
from siyu.domain.journey.sequential import compare, wilson
from siyu.domain.journey.timing import choose_arm, quiet_release, wait_until

SH = ZoneInfo("Asia/Shanghai")
GOOD: dict[str, Any] = {
    "trigger": {
        "kind": "event",
        "event": "Booking Missed",
        "where": [{"property": "store", "op": "eq", "value": "s1"}],
    },
    "reentry": {"mode": "after_days", "days": 30},
    "guards": {"frequency_cap": {"max": 3, "per_days": 7}, "quiet_hours": {"start": "21:00", "end": "09:00"}},
    "goal": {"event": "Order Completed"},
    "start": "w",
    "nodes": [
        {"id": "w", "kind": "wait", "minutes": 2880},
        {
            "id": "c",
            "kind": "condition",
            "branches": [
                {"name": "lead_in", "condition": {"kind": "orders", "measure": "sum", "op": "lt", "value": 500}}
            ],
        },
        {
            "id": "ab",
            "kind": "experiment",
            "arms": [{"name": "a", "weight": 1}, {"name": "b", "weight": 1}],
            "holdout_percent": 10,
        },
        {
            "id": "t",
            "kind": "action",
            "action": {"type": "task", "task_kind": "call", "title": "到店邀约", "due_hours": 4},
        },
        {"id": "s", "kind": "action", "action": {"type": "send", "channel": "wecom_1to1", "content": "您好"}},
        {"id": "end", "kind": "exit"},
    ],
    "edges": [
        {"from": "w", "to": "c"},
        {"from": "c", "to": "ab", "branch": "lead_in"},
        {"from": "c", "to": "t", "branch": "else"},
        {"from": "ab", "to": "t", "branch": "a"},
        {"from": "ab", "to": "s", "branch": "b"},
        {"from": "ab", "to": "end", "branch": "holdout"},
        {"from": "t", "to": "end"},
        {"from": "s", "to": "end"},
    ],
}


def _errors(d: dict[str, Any]) -> list[dict[str, Any]]:
    with pytest.raises(JourneyError) as exc:
        parse_journey(d)
    return exc.value.errors


def test_a_good_definition_parses_and_round_trips() -> None:
    jd = parse_journey(GOOD)
    again = parse_journey(jd.model_dump(mode="json", by_alias=True))
    assert again == jd and again.schema_version == 1
    assert jd.node("c").branches() == ["lead_in", "else"] and jd.node("ab").branches() == ["a", "b", "holdout"]


@pytest.mark.parametrize(
    ("change", "node_id", "field", "words"),
    [
        (lambda d: d["nodes"][0].update(minutes=0), "w", "minutes", "greater than or equal to 1"),
        (lambda d: d["nodes"][0].pop("minutes"), "w", "minutes", "needs 'minutes'"),
        (lambda d: d["nodes"][3]["action"].update(task_kind="fax"), "t", "action.task_kind", "call"),
        (lambda d: d["nodes"][4]["action"].update(channel="pigeon"), "s", "action.channel", "sms"),
        (
            lambda d: d["nodes"][1]["branches"][0]["condition"].update(op="about"),
            "c",
            "branches[0].condition.op",
            "gte",
        ),
        (lambda d: d["nodes"][2].update(holdout_percent=100), "ab", "holdout_percent", "less than 100"),
        (
            lambda d: d["edges"].append({"from": "t", "to": "s", "branch": "maybe"}),
            "t",
            "edges[8].branch",
            "does not exist",
        ),
        (lambda d: d["edges"].pop(5), "ab", "branches", "'holdout' leads nowhere"),
        (lambda d: d["edges"].append({"from": "end", "to": "w"}), "end", "edges[8].branch", "exit node"),
        (lambda d: d["nodes"].append({"id": "lonely", "kind": "exit"}), "lonely", "id", "unreachable"),
        (lambda d: d["nodes"].append({"id": "w", "kind": "exit"}), "w", "id", "duplicate"),
        (lambda d: d["nodes"].append({"id": "x", "kind": "teleport"}), "x", "kind", "teleport"),
    ],
)
def test_errors_name_the_node_and_the_field(change: Any, node_id: str, field: str, words: str) -> None:
    d = copy.deepcopy(GOOD)
    change(d)
    errs = _errors(d)
    hit = [e for e in errs if e["node_id"] == node_id and e["field"] == field]
    assert hit, errs
    assert words in hit[0]["message"]


def test_journey_level_errors_and_loops() -> None:
    d = copy.deepcopy(GOOD)
    d["start"] = "nowhere"
    d["timezone"] = "Mars/Olympus"
    d["reentry"] = {"mode": "after_days"}
    fields = {(e["node_id"], e["field"]) for e in _errors(d)}
    assert (None, "reentry.days") in fields
    d["reentry"] = {"mode": "once"}
    fields = {(e["node_id"], e["field"]) for e in _errors(d)}
    assert {(None, "start"), (None, "timezone")} <= fields
    loop = {
        "trigger": {"kind": "manual"},
        "start": "a",
        "nodes": [
            {"id": "a", "kind": "action", "action": {"type": "tag", "tag": "x"}},
            {"id": "b", "kind": "split", "arms": [{"name": "again", "weight": 1}, {"name": "out", "weight": 1}]},
            {"id": "z", "kind": "exit"},
        ],
        "edges": [
            {"from": "a", "to": "b"},
            {"from": "b", "to": "a", "branch": "again"},
            {"from": "b", "to": "z", "branch": "out"},
        ],
    }
    assert any("loop without a wait" in e["message"] for e in _errors(loop))
    loop["nodes"].append({"id": "w", "kind": "wait", "minutes": 60})
    loop["edges"][1] = {"from": "b", "to": "w", "branch": "again"}
    loop["edges"].append({"from": "w", "to": "a"})
    assert parse_journey(loop).start == "a"  # a loop through a wait is fine (e.g. a reminder every day)


def test_wait_times_quiet_hours_and_arms() -> None:
    now = datetime(2026, 11, 20, 14, 30)  # 22:30 in Shanghai
    tod = WaitNode(id="w", kind="wait", mode="time_of_day", at="10:00")
    assert wait_until(tod, now, SH) == datetime(2026, 11, 21, 2, 0)
    assert wait_until(tod, now, SH, ("19:00", "21:00")) == datetime(2026, 11, 21, 11, 0)
    assert wait_until(tod, now, SH, ("09:00", "12:00")) == datetime(2026, 11, 21, 2, 0)  # 10:00 is inside
    # time of week: Friday 2026-11-20 22:30 local → the next Monday or Wednesday at 10:00 is Monday the 23rd
    week = WaitNode(id="w", kind="wait", mode="time_of_day", at="10:00", weekdays=[1, 3])
    assert wait_until(week, now, SH) == datetime(2026, 11, 23, 2, 0)
    assert wait_until(week, datetime(2026, 11, 23, 2, 1), SH) == datetime(2026, 11, 25, 2, 0)
    until = WaitNode(id="w", kind="wait", mode="until_date", until=datetime(2026, 12, 1, 10, 0))
    assert wait_until(until, now, SH) == datetime(2026, 12, 1, 2, 0)
    q = QuietHours(start="21:00", end="09:00")
    assert quiet_release(now, SH, q) == datetime(2026, 11, 21, 1, 0)
    assert quiet_release(datetime(2026, 11, 21, 1, 0), SH, q) is None  # 09:00: quiet hours are over
    assert quiet_release(datetime(2026, 11, 20, 16, 59), SH, q) == datetime(2026, 11, 21, 1, 0)  # 00:59
    node = ExperimentNode.model_validate(
        {
            "id": "ab",
            "kind": "experiment",
            "arms": [{"name": "a", "weight": 3}, {"name": "b", "weight": 1}],
            "holdout_percent": 20,
        }
    )
    draws = [choose_arm(node, f"e{i}") for i in range(20000)]
    assert draws == [choose_arm(node, f"e{i}") for i in range(20000)]  # the same entry always gets the same arm
    share = {k: draws.count(k) / len(draws) for k in ("a", "b", "holdout")}
    assert abs(share["holdout"] - 0.2) < 0.015 and abs(share["a"] - 0.6) < 0.015 and abs(share["b"] - 0.2) < 0.015


def _simulate(p_a: float, p_b: float, sims: int, n: int, alpha: float, seed: int) -> tuple[float, float]:
    """Share of simulated experiments that ever declare a difference, looking after EVERY customer; mean stop."""
    rng = random.Random(seed)
    rejected, stops = 0, 0.0
    for _ in range(sims):
        na = xa = nb = xb = 0
        p_prev = 1.0
        for i in range(n):
            if rng.random() < 0.5:
                na += 1
                xa += rng.random() < p_a
            else:
                nb += 1
                xb += rng.random() < p_b
            c = compare(na, xa, nb, xb, alpha, p_prev=p_prev)
            p_prev = c.p_value
            if c.significant:
                rejected += 1
                stops += i
                break
    return rejected / sims, stops / max(rejected, 1)


@pytest.mark.parametrize("p", [0.03, 0.2, 0.5])
def test_always_valid_error_rate_stays_under_alpha_when_checked_after_every_customer(p: float) -> None:
    rate, _ = _simulate(p, p, sims=300, n=1500, alpha=0.05, seed=int(p * 1000))
    # 300 experiments each looked at 1,500 times; a fixed-n z-test looked at this often errs in > 30 %
    assert rate <= 0.05, rate


def test_the_always_valid_test_finds_a_real_difference() -> None:
    rate, stop = _simulate(0.10, 0.18, sims=100, n=3000, alpha=0.05, seed=3)
    assert rate >= 0.9 and stop < 3000, (rate, stop)
    c = compare(1000, 100, 1000, 180, 0.05)
    assert c.significant and c.low > 0 and c.low < 0.08 < c.high
    low, high = wilson(10, 100)
    assert 0.055 < low < 0.056 and 0.174 < high < 0.175  # Wilson (1927) interval of 10/100
