"""Pure rules of the guide workspace: follow-up kinds, sales stages, Moments posting windows and the customer
pool's assignment rules (round-robin, by store, by region, by load). No I/O."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from siyu.errors import SiyuError

FOLLOWUP_KINDS = ("call", "visit", "message", "other")
DEFAULT_STAGES = ("初次接触", "需求确认", "方案", "成交", "复购")
# seed 001: Moments posted 9–10 pm and 6–7 am reach the most customers
DEFAULT_WINDOWS = ("21:00-22:00", "06:00-07:00")
RULES = ("round_robin", "store", "region", "load")
MAX_STAGES = 20
_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


def check_kind(kind: str) -> str:
    """A follow-up type (call / visit / message / other)."""
    if kind not in FOLLOWUP_KINDS:
        raise SiyuError(f"kind {kind!r} is not a follow-up type; use one of {', '.join(FOLLOWUP_KINDS)}", "kind")
    return kind


def check_stages(stages: Sequence[str]) -> list[str]:
    """A brand's sales stages: 1..20 distinct non-empty names of at most 64 characters, in order."""
    names = [str(s).strip() for s in stages]
    if not 1 <= len(names) <= MAX_STAGES:
        raise SiyuError(f"stages: give 1 to {MAX_STAGES} stage names (got {len(names)})", "stages")
    for i, n in enumerate(names):
        if not n or len(n) > 64:
            raise SiyuError(f"stages[{i}] must be 1..64 characters", f"stages[{i}]")
    if len(set(names)) != len(names):
        raise SiyuError("stages must be distinct", "stages")
    return names


def parse_window(text: str, field: str = "windows") -> tuple[time, time]:
    """``HH:MM-HH:MM`` (local time; the end after the start) as two times."""
    m = _WINDOW.match(text.strip())
    if not m:
        raise SiyuError(f"{field}: {text!r} is not a time window; write HH:MM-HH:MM, e.g. 21:00-22:00", field)
    start, end = time(int(m[1]), int(m[2])), time(int(m[3]), int(m[4]))
    if end <= start:
        raise SiyuError(f"{field}: {text!r} ends before it starts", field)
    return start, end


def check_windows(windows: Sequence[str]) -> list[str]:
    """1..6 posting windows, each ``HH:MM-HH:MM``."""
    if not 1 <= len(windows) <= 6:
        raise SiyuError("windows: give 1 to 6 posting windows such as 21:00-22:00", "windows")
    for i, w in enumerate(windows):
        parse_window(w, f"windows[{i}]")
    return [w.strip() for w in windows]


def next_window(now_local: datetime, windows: Sequence[str]) -> datetime:
    """The start of the next posting window at or after ``now_local`` (inside a window: ``now_local``)."""
    best: datetime | None = None
    for w in windows:
        start, end = parse_window(w)
        for day in (0, 1):
            d = (now_local + timedelta(days=day)).date()
            s, e = datetime.combine(d, start, now_local.tzinfo), datetime.combine(d, end, now_local.tzinfo)
            if e <= now_local:
                continue
            at = max(s, now_local)
            best = at if best is None or at < best else best
            break
    assert best is not None
    return best


@dataclass(frozen=True)
class Lead:
    """A pool lead as the assignment rules see it."""

    customer_id: str
    store_id: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class GuideSlot:
    """A guide who may receive leads: their store, the store's city (region) and open leads now."""

    guide_id: str
    store_id: str | None = None
    region: str | None = None
    load: int = 0


def assign(
    rule: str, leads: Sequence[Lead], guides: Sequence[GuideSlot], cursor: int = 0
) -> tuple[dict[str, str], int]:
    """Map customer_id → guide_id by ``rule``; returns the mapping and the new round-robin cursor.

    * round_robin: guides in guide_id order, continuing from ``cursor`` (kept per brand between runs);
    * store / region: the lead's store (or region) decides the candidates, round-robin among them by load;
    * load: each lead to the guide with the fewest open leads at that moment (ties: guide_id).
    Leads without a candidate guide are left out (they stay in the pool)."""
    if rule not in RULES:
        raise SiyuError(f"rule {rule!r} is not known; use one of {', '.join(RULES)}", "rule")
    pool = sorted(guides, key=lambda g: g.guide_id)
    out: dict[str, str] = {}
    if not pool:
        return out, cursor
    if rule == "round_robin":
        for lead in leads:
            out[lead.customer_id] = pool[cursor % len(pool)].guide_id
            cursor += 1
        return out, cursor % len(pool)
    load: dict[str, int] = {g.guide_id: g.load for g in pool}
    for lead in leads:
        if rule == "load":
            cands = pool
        else:
            key = lead.store_id if rule == "store" else lead.region
            cands = [g for g in pool if key and (g.store_id if rule == "store" else g.region) == key]
        if not cands:
            continue
        pick = min(cands, key=lambda g: (load[g.guide_id], g.guide_id))
        out[lead.customer_id] = pick.guide_id
        load[pick.guide_id] += 1
    return out, cursor


def loads_after(assigned: Mapping[str, str], guides: Sequence[GuideSlot]) -> dict[str, int]:
    """Open leads per guide once ``assigned`` is applied (for reports)."""
    out = {g.guide_id: g.load for g in guides}
    for g in assigned.values():
        out[g] = out.get(g, 0) + 1
    return out
