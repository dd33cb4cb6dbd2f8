"""What the journey engine reads from the warehouse, in bulk for a batch of customers (Ibis expressions; a
condition's compiled SQL is cached and run with the batch's ids as a parameter)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

import ibis

from siyu.analytics.base import customer_events
from siyu.analytics.segments import json_compare, segment_customers
from siyu.domain.segment_def import PropertyFilter, parse_definition
from siyu.services import segments as segment_service
from siyu.services.context import Context
from siyu.services.metrics import tables

_COMPILED: dict[tuple[str, str, str, date], str] = {}
_COMPILED_MAX = 256


def _compiled(ctx: Context, brand_id: str, condition: dict[str, Any], day: date) -> str:
    """The SQL Ibis compiles for the condition's customers (compiled once per condition and day: compiling
    costs far more than running it for a batch)."""
    key = (str(ctx.settings.data_dir), brand_id, json.dumps(condition, sort_keys=True, default=str), day)
    sql = _COMPILED.get(key)
    if sql is None:
        expr = segment_customers(tables(ctx, brand_id), parse_definition(condition), day).select("customer_id")
        sql = str(ibis.to_sql(expr, dialect="duckdb"))
        if len(_COMPILED) >= _COMPILED_MAX:
            _COMPILED.clear()
        _COMPILED[key] = sql
    return sql


def matching(ctx: Context, brand_id: str, condition: dict[str, Any], ids: list[str]) -> set[str]:
    """Which of ``ids`` match a segment condition (as of the brand's default 'as of' day)."""
    if not ids:
        return set()
    day = segment_service.default_as_of(ctx, brand_id)
    try:
        sql = _compiled(ctx, brand_id, condition, day)
        rows = (
            ctx.warehouse.cursor()
            .execute(f"SELECT customer_id FROM ({sql}) AS m WHERE customer_id IN (SELECT unnest(?))", [ids])
            .fetchall()
        )
        return {str(r[0]) for r in rows}
    except Exception:  # an expression that does not compile to plain SQL (in-memory tables): Ibis runs it
        expr = segment_customers(tables(ctx, brand_id), parse_definition(condition), day)
        expr = expr.filter(expr.customer_id.isin(ids))
        return {r["customer_id"] for r in expr.to_pyarrow().to_pylist()}


def _events(ctx: Context, brand_id: str, event: str, where: Iterable[PropertyFilter]) -> Any:
    e = customer_events(tables(ctx, brand_id))
    cond = (e.type == "track") & (e.event == event)
    for f in where:
        cond = cond & json_compare(e.properties, f.property, f.op, f.value)
    return e.filter(cond)


def first_events(
    ctx: Context, brand_id: str, event: str, where: Iterable[PropertyFilter], since: dict[str, datetime]
) -> dict[str, datetime]:
    """For each customer of ``since``: the first time they did ``event`` at or after their own ``since``."""
    if not since:
        return {}
    e = _events(ctx, brand_id, event, where)
    e = e.filter(e.customer_id.isin(list(since)) & (e.timestamp >= min(since.values())))
    rows = e.select("customer_id", "timestamp").to_pyarrow().to_pylist()
    out: dict[str, datetime] = {}
    for r in rows:
        ts = r["timestamp"].replace(tzinfo=None) if r["timestamp"] is not None else None
        cid = r["customer_id"]
        if ts is None or ts < since[cid]:
            continue
        if cid not in out or ts < out[cid]:
            out[cid] = ts
    return out


def first_values(
    ctx: Context,
    brand_id: str,
    event: str,
    where: Iterable[PropertyFilter],
    since: dict[str, datetime],
    value_property: str,
) -> dict[str, tuple[datetime, float | None]]:
    """``first_events`` with the number in ``properties.<value_property>`` of that first event (None if absent)."""
    if not since:
        return {}
    e = _events(ctx, brand_id, event, where)
    e = e.filter(e.customer_id.isin(list(since)) & (e.timestamp >= min(since.values())))
    value = e.properties[value_property].float  # type: ignore[attr-defined]
    rows = e.select("customer_id", "timestamp", value=value).to_pyarrow().to_pylist()
    out: dict[str, tuple[datetime, float | None]] = {}
    for r in rows:
        ts = r["timestamp"].replace(tzinfo=None) if r["timestamp"] is not None else None
        cid = r["customer_id"]
        if ts is None or ts < since[cid]:
            continue
        if cid not in out or ts < out[cid][0]:
            out[cid] = (ts, r["value"])
    return out


def events_between(
    ctx: Context, brand_id: str, event: str, where: Iterable[PropertyFilter], start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """Events (customer_id, message_id, timestamp) in (start, end], oldest first (event triggers)."""
    e = _events(ctx, brand_id, event, where)
    e = e.filter((e.timestamp > start) & (e.timestamp <= end))
    rows: list[dict[str, Any]] = (
        e.select("customer_id", "message_id", "timestamp").order_by("timestamp").to_pyarrow().to_pylist()
    )
    return rows


def customers_with_events(ctx: Context, brand_id: str, events: list[str], start: datetime, end: datetime) -> set[str]:
    """Customers who did any of ``events`` in (start, end] (wakes waiting and goal checks)."""
    if not events:
        return set()
    e = customer_events(tables(ctx, brand_id))
    e = e.filter((e.type == "track") & e.event.isin(events) & (e.timestamp > start) & (e.timestamp <= end))
    return {r["customer_id"] for r in e.select("customer_id").distinct().to_pyarrow().to_pylist()}


def guides_of(ctx: Context, brand_id: str, ids: list[str]) -> dict[str, str]:
    """Each customer's guide: the active WeCom relation added last."""
    if not ids:
        return {}
    t = tables(ctx, brand_id)
    rel, idt = t.relations, t.identities
    rel = rel.filter(rel.state == "active")
    idt = idt.filter((idt.id_type == "external_userid") & idt.customer_id.isin(ids))
    j = rel.join(idt, rel.external_userid == idt.id_value).select(
        customer_id=idt.customer_id, guide_id=rel.guide_id, added_at=rel.added_at
    )
    out: dict[str, tuple[datetime, str]] = {}
    for r in j.to_pyarrow().to_pylist():
        cur = out.get(r["customer_id"])
        if cur is None or r["added_at"] > cur[0]:
            out[r["customer_id"]] = (r["added_at"], r["guide_id"])
    return {k: v[1] for k, v in out.items()}


def active_hours(ctx: Context, brand_id: str, ids: list[str]) -> dict[str, tuple[str, str]]:
    """Customers' active hours from ``traits.active_hours`` ("19:00-21:00" or {"start", "end"})."""
    if not ids:
        return {}
    c = tables(ctx, brand_id).customers
    c = c.filter(c.customer_id.isin(ids)).select("customer_id", v=c.traits["active_hours"])
    out: dict[str, tuple[str, str]] = {}
    for r in c.to_pyarrow().to_pylist():
        v = r["v"]
        if v is None:
            continue
        with contextlib.suppress(ValueError):
            v = json.loads(v) if isinstance(v, str) else v
        if isinstance(v, dict) and "start" in v and "end" in v:
            out[r["customer_id"]] = (str(v["start"]), str(v["end"]))
        elif isinstance(v, str) and "-" in v:
            a, b = v.split("-", 1)
            out[r["customer_id"]] = (a.strip(), b.strip())
    return out


def date_matches(ctx: Context, brand_id: str, field: str, day: date, annual: bool) -> list[str]:
    """Customers whose date attribute is ``day`` (``annual``: same month and day, any year)."""
    c = tables(ctx, brand_id).customers
    if field.startswith("traits."):
        col = c.traits[field.removeprefix("traits.")].str.cast("date")  # type: ignore[attr-defined]
    else:
        col = c[field].cast("date")
    cond = (col.month() == day.month) & (col.day() == day.day) if annual else col == ibis.literal(day)
    return [r["customer_id"] for r in c.filter(cond).select("customer_id").to_pyarrow().to_pylist()]


def audience(ctx: Context, brand_id: str, segment_id: str | None) -> list[str]:
    """A cadence trigger's audience: the segment's current members, or every customer of the brand."""
    if segment_id is None:
        c = tables(ctx, brand_id).customers
        return [r["customer_id"] for r in c.select("customer_id").to_pyarrow().to_pylist()]
    m = ctx.warehouse.ibis.table("segment_members")
    m = m.filter((m.brand_id == brand_id) & (m.segment_id == segment_id) & m.exited_at.isnull())
    return [r["customer_id"] for r in m.select("customer_id").distinct().to_pyarrow().to_pylist()]


def segment_changes(ctx: Context, brand_id: str, segment_id: str, on: str, since: datetime) -> list[dict[str, Any]]:
    """Entries (or exits) of a segment at or after ``since``: customer_id and ``at``."""
    if on == "entry":
        rows = segment_service.entries_since(ctx, brand_id, segment_id, since)
        return [{"customer_id": r["customer_id"], "at": r["entered_at"], "exited_at": r["exited_at"]} for r in rows]
    m = ctx.warehouse.ibis.table("segment_members")
    m = m.filter((m.brand_id == brand_id) & (m.segment_id == segment_id) & (m.exited_at >= since))
    got = m.select("customer_id", at=m.exited_at).order_by("at").to_pyarrow().to_pylist()
    return list(got)


def existing_customers(ctx: Context, brand_id: str, ids: list[str]) -> set[str]:
    c = tables(ctx, brand_id).customers
    c = c.filter(c.customer_id.isin(ids)).select("customer_id")
    return {r["customer_id"] for r in c.to_pyarrow().to_pylist()}
