"""The journey executor: wakes due entries and runs their steps, exactly once per (entry, node, attempt).

``run_due`` takes a batch of due entries (status active, ``wake_at`` ≤ now, journey active) and moves every one
as far as it goes now (until it waits or exits), node by node for the whole batch at once (conditions and event
checks are one warehouse query per node, not per customer). Everything a batch decides is written in ONE state
transaction: the step rows (primary key = the idempotency key (entry, node, attempt)), the entries' new node /
wake-up time, the staff tasks, the started journeys and the effect rows (keyed by the step) — a worker killed
mid-batch leaves no trace and the batch runs again; a step cannot be written twice (primary key), and an entry
is only moved from the attempt it was read at. Effects that leave the state DB (sends, tags, attributes) are
delivered afterwards by ``siyu.services.journeys.effects`` with the step's key, so a retry repeats the key.
"""

from __future__ import annotations

import random
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.orm import Session

from siyu.domain.journey import JourneyDefinition
from siyu.domain.journey.definition import (
    TOUCH_ACTIONS,
    ActionNode,
    ConditionNode,
    ExperimentNode,
    SendAction,
    SplitNode,
    WaitEventNode,
    WaitNode,
    WaitSegmentNode,
)
from siyu.domain.journey.timing import choose_arm, local_day, quiet_release, wait_until
from siyu.services.context import Context
from siyu.services.journeys import facts
from siyu.services.journeys.cache import definition
from siyu.services.journeys.entries import enter
from siyu.services.messaging import marketing_cap
from siyu.stores.state.journey_models import (
    JourneyEffectRow,
    JourneyEntryRow,
    JourneyRow,
    JourneyStepRow,
    JourneySuppressionRow,
    JourneyTaskRow,
)
from siyu.stores.state.models import utcnow

BATCH = 1000  # entries per batch: per-batch costs (two commits, a few queries) amortised, transactions short
LEASE_SECONDS = 15  # a claimed batch is invisible to other workers this long (longer than any batch takes)
MAX_ROUNDS = 250
_RUN_LOCK = threading.Lock()
STEPS: Table = JourneyStepRow.__table__  # type: ignore[assignment]
EFFECTS: Table = JourneyEffectRow.__table__  # type: ignore[assignment]
TASKS: Table = JourneyTaskRow.__table__  # type: ignore[assignment]
ENTRIES: Table = JourneyEntryRow.__table__  # type: ignore[assignment]
_COLS = (
    "id",
    "brand_id",
    "journey_id",
    "version",
    "customer_id",
    "node_id",
    "seq",
    "wake_at",
    "waiting_since",
    "arm",
    "entered_at",
    "goal_at",
    "goal_value",
)


class ConcurrentRun(Exception):
    """Another worker moved an entry of this batch first; the batch is rolled back (and will be read again)."""


@dataclass
class _Entry:
    id: str
    brand_id: str
    journey_id: str
    version: int
    customer_id: str
    node_id: str
    seq: int
    wake_at: datetime | None
    waiting_since: datetime | None
    arm: str | None
    entered_at: datetime
    goal_at: datetime | None
    goal_value: float | None
    orig_seq: int = 0
    status: str = "active"
    exited_at: datetime | None = None
    exit_reason: str | None = None
    done: bool = False


@dataclass
class _Batch:
    now: datetime
    steps: list[dict[str, Any]] = field(default_factory=list)
    effects: list[dict[str, Any]] = field(default_factory=list)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    touches: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    channel_touches: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    starts: list[tuple[str, str, str, str]] = field(default_factory=list)  # (brand, journey id, customer, key)


def _pass(b: _Batch, jd: JourneyDefinition, e: _Entry, branch: str, outcome: str = "ok") -> None:
    b.steps.append(
        {
            "entry_id": e.id,
            "node_id": e.node_id,
            "attempt": e.seq,
            "journey_id": e.journey_id,
            "version": e.version,
            "branch": branch,
            "outcome": outcome,
            "at": b.now,
        }
    )
    e.seq += 1
    e.waiting_since = None
    e.wake_at = b.now
    if branch == "":
        e.status, e.exited_at, e.exit_reason, e.wake_at, e.done = "exited", b.now, outcome, None, True
        return
    e.node_id = jd.next_of()[(e.node_id, branch)]


def _key(e: _Entry) -> str:
    return f"{e.id}:{e.node_id}:{e.seq}"


def _wait(ctx: Context, jd: JourneyDefinition, node: WaitNode, group: list[_Entry], b: _Batch) -> None:
    tz = ZoneInfo(jd.timezone)
    hours: dict[str, tuple[str, str]] = {}
    if node.mode == "time_of_day" and node.use_active_hours:
        hours = facts.active_hours(ctx, group[0].brand_id, [e.customer_id for e in group])
    for e in group:
        if e.waiting_since is None:  # the timer starts when the customer reached the node, not when a worker saw it
            e.waiting_since = min(e.wake_at or b.now, b.now)
        due = wait_until(node, e.waiting_since, tz, hours.get(e.customer_id))
        if due <= b.now:
            _pass(b, jd, e, "next")
        else:
            e.wake_at, e.done = due, True


def _wait_event(ctx: Context, jd: JourneyDefinition, node: WaitEventNode, group: list[_Entry], b: _Batch) -> None:
    waiting = [e for e in group if e.waiting_since is not None]
    seen = facts.first_events(
        ctx,
        group[0].brand_id,
        node.event,
        node.where,
        {e.customer_id: e.waiting_since for e in waiting if e.waiting_since},
    )
    for e in group:
        if e.waiting_since is None:
            e.waiting_since = min(e.wake_at or b.now, b.now)
            e.wake_at = e.waiting_since + timedelta(minutes=node.timeout_minutes)
            if e.wake_at > b.now:
                e.done = True
                continue
        timeout = e.waiting_since + timedelta(minutes=node.timeout_minutes)
        at = seen.get(e.customer_id)
        if at is not None and at <= min(b.now, timeout):
            _pass(b, jd, e, "event")
        elif b.now >= timeout:
            _pass(b, jd, e, "timeout")
        else:
            e.wake_at, e.done = timeout, True


def _wait_segment(ctx: Context, jd: JourneyDefinition, node: WaitSegmentNode, group: list[_Entry], b: _Batch) -> None:
    hit = facts.matching(ctx, group[0].brand_id, node.condition, [e.customer_id for e in group])
    for e in group:
        if e.waiting_since is None:
            e.waiting_since = min(e.wake_at or b.now, b.now)
        timeout = e.waiting_since + timedelta(minutes=node.timeout_minutes)
        if e.customer_id in hit:
            _pass(b, jd, e, "matched")
        elif b.now >= timeout:
            _pass(b, jd, e, "timeout")
        else:
            e.wake_at, e.done = min(b.now + timedelta(minutes=node.check_minutes), timeout), True


def _condition(ctx: Context, jd: JourneyDefinition, node: ConditionNode, group: list[_Entry], b: _Batch) -> None:
    left = {e.customer_id: e for e in group}
    chosen: dict[str, str] = {}
    for br in node.branches_:
        if not left:
            break
        hit = facts.matching(ctx, group[0].brand_id, br.condition, list(left))
        for cid in hit:
            chosen[left.pop(cid).id] = br.name
    for e in group:
        _pass(b, jd, e, chosen.get(e.id, "else"))


def _split(jd: JourneyDefinition, node: SplitNode | ExperimentNode, group: list[_Entry], b: _Batch) -> None:
    for e in group:
        arm = choose_arm(node, e.id)
        if isinstance(node, ExperimentNode):
            e.arm = f"{node.id}:{arm}"
        _pass(b, jd, e, arm)


def _touch_counts(s: Session, brand_id: str, ids: list[str], since: datetime) -> dict[str, int]:
    q = (
        select(JourneyEffectRow.customer_id, func.count())
        .where(
            JourneyEffectRow.brand_id == brand_id,
            JourneyEffectRow.customer_id.in_(ids),
            JourneyEffectRow.created_at >= since,
            JourneyEffectRow.kind.in_(TOUCH_ACTIONS),
        )
        .group_by(JourneyEffectRow.customer_id)
    )
    return {cid: int(n) for cid, n in s.execute(q)}


def _channel_counts(
    s: Session, brand_id: str, ids: list[str], channel: str, day: tuple[datetime, datetime]
) -> dict[str, int]:
    """Sends of ``channel`` per customer inside the local ``day`` [midnight, next midnight), all journeys."""
    q = (
        select(JourneyEffectRow.customer_id, func.count())
        .where(
            JourneyEffectRow.brand_id == brand_id,
            JourneyEffectRow.customer_id.in_(ids),
            JourneyEffectRow.created_at >= day[0],
            JourneyEffectRow.created_at < day[1],
            JourneyEffectRow.kind == "send",
            JourneyEffectRow.channel == channel,
        )
        .group_by(JourneyEffectRow.customer_id)
    )
    return {cid: int(n) for cid, n in s.execute(q)}


def _suppressed(s: Session, brand_id: str, ids: list[str]) -> dict[str, set[str]]:
    q = select(JourneySuppressionRow.customer_id, JourneySuppressionRow.channel).where(
        JourneySuppressionRow.brand_id == brand_id, JourneySuppressionRow.customer_id.in_(ids)
    )
    out: dict[str, set[str]] = defaultdict(set)
    for cid, ch in s.execute(q):
        out[cid].add(ch)
    return out


def _action(s: Session, ctx: Context, jd: JourneyDefinition, node: ActionNode, group: list[_Entry], b: _Batch) -> None:
    a = node.action
    brand = group[0].brand_id
    ids = [e.customer_id for e in group]
    touch = a.type in TOUCH_ACTIONS
    if touch:
        release = quiet_release(b.now, ZoneInfo(jd.timezone), jd.guards.quiet_hours)
        if release is not None:  # held at the node until quiet hours end; nothing is recorded
            for e in group:
                e.wake_at, e.done = release, True
            return
    cap = jd.guards.frequency_cap
    counts = _touch_counts(s, brand, ids, b.now - timedelta(days=cap.per_days)) if touch and cap else {}
    day_cap = jd.guards.channel_daily_caps.get(a.channel) if isinstance(a, SendAction) else None
    today: dict[str, int] = {}
    if day_cap and isinstance(a, SendAction):  # the brand's local day (the one the daily marketing cap uses)
        day = local_day(b.now, ZoneInfo(marketing_cap(ctx, brand).timezone))
        today = _channel_counts(s, brand, ids, a.channel, day)
    supp = _suppressed(s, brand, ids) if touch and jd.guards.respect_suppression else {}
    guides = facts.guides_of(ctx, brand, ids) if a.type == "task" else {}
    channel = a.channel if a.type == "send" else a.type
    for e in group:
        cid = e.customer_id
        if touch and ({"*", channel} & supp.get(cid, set())):
            _pass(b, jd, e, "next", "suppressed")
            continue
        if touch and cap and counts.get(cid, 0) + b.touches[cid] >= cap.max:
            _pass(b, jd, e, "next", "capped")
            continue
        if day_cap and today.get(cid, 0) + b.channel_touches[(cid, channel)] >= day_cap:
            _pass(b, jd, e, "next", "channel_capped")
            continue
        key = _key(e)
        effect = {
            "key": key,
            "brand_id": brand,
            "journey_id": e.journey_id,
            "entry_id": e.id,
            "node_id": node.id,
            "customer_id": cid,
            "kind": a.type,
            "channel": channel,
            "payload": a.model_dump(mode="json"),
            "status": "pending",
            "attempts": 0,
            "error": None,
            "created_at": b.now,
            "done_at": None,
        }
        outcome = "ok"
        if a.type == "task":
            guide = guides.get(cid)
            b.tasks.append(
                {
                    "id": key,
                    "brand_id": brand,
                    "journey_id": e.journey_id,
                    "entry_id": e.id,
                    "node_id": node.id,
                    "customer_id": cid,
                    "guide_id": guide,
                    "kind": a.task_kind,
                    "title": a.title,
                    "script": a.script,
                    "due_at": b.now + timedelta(hours=a.due_hours),
                    "status": "open",
                    "note": "",
                    "created_at": b.now,
                    "done_at": None,
                    "done_by": None,
                }
            )
            effect.update(status="done", done_at=b.now)
            outcome = "ok" if guide else "no_guide"
        elif a.type == "start_journey":
            b.starts.append((brand, a.journey_id, cid, key))
            effect.update(status="done", done_at=b.now)
        if touch:
            b.touches[cid] += 1
            b.channel_touches[(cid, channel)] += 1
        b.effects.append(effect)
        _pass(b, jd, e, "next", outcome)


def _goal_check(ctx: Context, jd: JourneyDefinition, group: list[_Entry], b: _Batch) -> None:
    if jd.goal is None:
        return
    todo = [e for e in group if e.goal_at is None]
    if not todo:
        return
    seen = facts.first_values(
        ctx,
        todo[0].brand_id,
        jd.goal.event,
        jd.goal.where,
        {e.customer_id: e.entered_at for e in todo},
        jd.goal.value_property,
    )
    for e in todo:
        hit = seen.get(e.customer_id)
        if hit is None or hit[0] > b.now:
            continue
        e.goal_at, e.goal_value = hit
        if jd.goal.exit_on_goal:
            _pass(b, jd, e, "", "goal")


def _load(s: Session, now: datetime, limit: int, journey_id: str | None) -> list[_Entry]:
    cols = [getattr(JourneyEntryRow, c) for c in _COLS]
    q = (
        select(*cols)
        .join(JourneyRow, JourneyRow.id == JourneyEntryRow.journey_id)
        .where(JourneyEntryRow.status == "active", JourneyEntryRow.wake_at <= now, JourneyRow.status == "active")
    )
    if journey_id is not None:
        q = q.where(JourneyEntryRow.journey_id == journey_id)
    rows = s.execute(q.order_by(JourneyEntryRow.wake_at).limit(limit)).all()
    out = []
    for r in rows:
        e = _Entry(*r)
        e.orig_seq = e.seq
        out.append(e)
    return out


def _claim(ctx: Context, now: datetime, limit: int, journey_id: str | None) -> list[_Entry]:
    """Take a batch of due entries for this worker: one short transaction moves their ``wake_at`` to a lease
    (``now`` + ``LEASE_SECONDS``, with a random microsecond as this claim's token), so other worker processes skip
    them; a worker killed mid-batch leaves them to be taken again when the lease ends. The entries keep their
    loaded ``wake_at`` in memory (it is when they reached their node)."""
    lease = (now + timedelta(seconds=LEASE_SECONDS)).replace(microsecond=random.randrange(1_000_000))
    with ctx.sessions() as s, s.begin():
        entries = _load(s, now, limit, journey_id)
        if not entries:
            return []
        ids = [e.id for e in entries]
        claimed = s.execute(
            update(ENTRIES)
            .where(ENTRIES.c.id.in_(ids), ENTRIES.c.status == "active", ENTRIES.c.wake_at <= now)
            .values(wake_at=lease)
            .returning(ENTRIES.c.id)
        )
        mine = set(claimed.scalars())
    return [e for e in entries if e.id in mine]


def run_due(ctx: Context, now: datetime | None = None, limit: int = BATCH, journey_id: str | None = None) -> int:
    """Run one batch of due entries; returns the number of steps executed (0 = nothing was due).

    Several worker processes may run this at once over one state DB: each claims its own batch (``_claim``);
    the batch's writes are one transaction that moves an entry only from the attempt it was read at and writes
    each step once (primary key), so a step never runs twice and a batch that loses a race is rolled back and
    its entries are taken again."""
    now = now or utcnow()
    with _RUN_LOCK:
        entries = _claim(ctx, now, limit, journey_id)
        if not entries:
            return 0
        with ctx.sessions() as s, s.begin():
            b = _Batch(now)
            by_version: dict[tuple[str, int], list[_Entry]] = defaultdict(list)
            for e in entries:
                by_version[(e.journey_id, e.version)].append(e)
            for (jid, ver), group in by_version.items():
                _goal_check(ctx, definition(ctx, jid, ver), group, b)
            for _ in range(MAX_ROUNDS):
                ready: dict[tuple[str, int, str], list[_Entry]] = defaultdict(list)
                for e in entries:
                    if not e.done:
                        ready[(e.journey_id, e.version, e.node_id)].append(e)
                if not ready:
                    break
                for (jid, ver, nid), group in ready.items():
                    jd = definition(ctx, jid, ver)
                    node = jd.node(nid)
                    if node.kind == "exit":
                        for e in group:
                            _pass(b, jd, e, "", "completed")
                    elif isinstance(node, WaitNode):
                        _wait(ctx, jd, node, group, b)
                    elif isinstance(node, WaitEventNode):
                        _wait_event(ctx, jd, node, group, b)
                    elif isinstance(node, WaitSegmentNode):
                        _wait_segment(ctx, jd, node, group, b)
                    elif isinstance(node, ConditionNode):
                        _condition(ctx, jd, node, group, b)
                    elif isinstance(node, SplitNode | ExperimentNode):
                        _split(jd, node, group, b)
                    elif isinstance(node, ActionNode):
                        _action(s, ctx, jd, node, group, b)
            _persist(s, ctx, entries, b)
            return len(b.steps)


def _persist(s: Session, ctx: Context, entries: list[_Entry], b: _Batch) -> None:
    by_key = {e["key"]: e for e in b.effects}
    for brand, jid, cid, key in b.starts:  # a journey of the same brand, active, in this same transaction
        target = s.get(JourneyRow, jid)
        if target is None or target.brand_id != brand or target.status != "active":
            by_key[key].update(status="failed", error=f"journey {jid!r} not found or not active")
            continue
        enter(s, ctx, target, [(cid, "from:" + key)], b.now)
    if b.steps:
        s.execute(STEPS.insert(), b.steps)  # primary key (entry, node, attempt): a step is written once
    if b.effects:
        s.execute(EFFECTS.insert(), b.effects)
    if b.tasks:
        s.execute(TASKS.insert(), b.tasks)
    stmt = (
        update(ENTRIES)
        .where(ENTRIES.c.id == bindparam("e_id"), ENTRIES.c.seq == bindparam("e_orig"))
        .values(
            node_id=bindparam("e_node"),
            seq=bindparam("e_seq"),
            wake_at=bindparam("e_wake"),
            waiting_since=bindparam("e_since"),
            arm=bindparam("e_arm"),
            status=bindparam("e_status"),
            exited_at=bindparam("e_exited"),
            exit_reason=bindparam("e_reason"),
            goal_at=bindparam("e_goal"),
            goal_value=bindparam("e_goal_value"),
        )
    )
    params = [
        {
            "e_id": e.id,
            "e_orig": e.orig_seq,
            "e_node": e.node_id,
            "e_seq": e.seq,
            "e_wake": e.wake_at,
            "e_since": e.waiting_since,
            "e_arm": e.arm,
            "e_status": e.status,
            "e_exited": e.exited_at,
            "e_reason": e.exit_reason,
            "e_goal": e.goal_at,
            "e_goal_value": e.goal_value,
        }
        for e in entries
    ]
    res = s.connection().execute(stmt, params)
    if res.rowcount not in (-1, len(params)):
        raise ConcurrentRun(f"{len(params) - res.rowcount} entries moved by another worker; batch rolled back")


def run_until_idle(ctx: Context, now: datetime | None = None, max_batches: int = 1_000_000) -> int:
    """Run batches until nothing is due (tests, CLI); returns the steps executed."""
    total = 0
    for _ in range(max_batches):
        n = run_due(ctx, now)
        if n == 0:
            break
        total += n
    return total
