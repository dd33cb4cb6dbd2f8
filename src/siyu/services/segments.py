"""Customer segments (客户分群): save versioned definitions, preview counts live, materialise membership, export.

Definitions are validated by ``siyu.domain.segment_def`` and compiled by ``siyu.analytics.segments`` to one Ibis
expression. Membership is materialised in the warehouse table ``segment_members``: a refresh inserts a row
(``entered_at``) for each new member and stamps ``exited_at`` on members who no longer match, so journeys can
trigger on entry (``entries_since``). Guides see counts and members restricted to their own customers and may
not change segments. Dates: ``as_of`` defaults to the day after the last day with data (the whole data counts).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd
from sqlalchemy import select

from siyu.analytics.base import Tables
from siyu.analytics.segments import segment_customers
from siyu.domain.models import Role
from siyu.domain.segment_def import Condition, dump_definition, parse_definition
from siyu.services.brands import User, get_brand
from siyu.services.context import Context
from siyu.services.errors import Conflict, Forbidden, NotFound, SiyuError
from siyu.services.exports import export_frame, hash_pii
from siyu.services.metrics import data_end, parse_day, restrict, scope
from siyu.services.metrics import tables as metrics_tables
from siyu.stores.state.models import BrandRow, utcnow
from siyu.stores.state.segment_models import SegmentRow, SegmentVersionRow

log = logging.getLogger(__name__)
MAX_SAMPLE = 200
AS_OF_TTL_SECONDS = 60.0  # the default 'as of' (last day with data) is cached this long per brand
MAX_PAGE_SIZE = 500
MEMBER_COLUMNS: tuple[str, ...] = ("customer_id", "name", "phone", "city", "entered_at")


@dataclass(frozen=True)
class SegmentInfo:
    """A saved segment with its current definition and the last refresh's figures."""

    id: str
    brand_id: str
    name: str
    description: str
    version: int
    definition: dict[str, Any]
    member_count: int | None
    refreshed_at: datetime | None
    refresh_error: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        d = asdict(self)
        for k in ("refreshed_at", "created_at", "updated_at"):
            d[k] = d[k].isoformat() if d[k] else None
        return d


_as_of_cache: dict[tuple[int, str], tuple[float, date]] = {}


def tables(ctx: Context, brand_id: str) -> Tables:
    """The brand's tables on this thread's backend (``siyu.services.metrics.tables``: bound once per backend)."""
    return metrics_tables(ctx, brand_id)


def default_as_of(ctx: Context, brand_id: str) -> date:
    """The day after the last day with data: the 'as of' instant at which all the data counts (cached 60 s)."""
    key = (id(ctx), brand_id)
    hit = _as_of_cache.get(key)
    if hit is not None and time.monotonic() - hit[0] < AS_OF_TTL_SECONDS:
        return hit[1]
    day = data_end(ctx, brand_id) + timedelta(days=1)
    _as_of_cache[key] = (time.monotonic(), day)
    return day


def resolve_as_of(ctx: Context, brand_id: str, as_of: str | date | None) -> date:
    """``as_of`` from the request (YYYY-MM-DD), or the default."""
    if as_of is None or as_of == "":
        return default_as_of(ctx, brand_id)
    return parse_day(as_of, "as_of")


def require_editor(user: User) -> None:
    if user.role == Role.GUIDE:
        raise Forbidden("guides may view segments but not change them; ask an operator or admin", "role")


def _info(row: SegmentRow, definition: dict[str, Any]) -> SegmentInfo:
    return SegmentInfo(
        id=row.id,
        brand_id=row.brand_id,
        name=row.name,
        description=row.description,
        version=row.version,
        definition=definition,
        member_count=row.member_count,
        refreshed_at=row.refreshed_at,
        refresh_error=row.refresh_error,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise SiyuError("name is required (1–200 characters), e.g. 近7天点击2次以上", "name")
    return name


def _check_unique(ctx: Context, brand_id: str, name: str, except_id: str | None = None) -> None:
    with ctx.sessions() as s:
        q = select(SegmentRow.id).where(
            SegmentRow.brand_id == brand_id, SegmentRow.name == name, SegmentRow.archived_at.is_(None)
        )
        found = [x for x in s.scalars(q) if x != except_id]
    if found:
        raise Conflict(f"a segment named {name!r} exists already ({found[0]}); choose another name", "name")


def validate(definition: Any) -> Condition:
    """Parse a definition (``DefinitionError`` names each bad field's JSON path and the fix)."""
    return parse_definition(definition)


# ---- CRUD ---------------------------------------------------------------------------------------------------


def create_segment(
    ctx: Context, user: User, name: str, definition: Any, description: str = "", refresh: bool = True
) -> SegmentInfo:
    """Save a new segment (version 1) and, by default, materialise its members."""
    require_editor(user)
    name = _clean_name(name)
    cond = validate(definition)
    _check_unique(ctx, user.brand_id, name)
    now = utcnow()
    sid = "seg_" + uuid.uuid4().hex[:12]
    body = dump_definition(cond)
    with ctx.sessions() as s, s.begin():
        s.add(
            SegmentRow(
                id=sid,
                brand_id=user.brand_id,
                name=name,
                description=description or "",
                version=1,
                created_by=user.username,
                created_at=now,
                updated_at=now,
            )
        )
        s.flush()
        s.add(SegmentVersionRow(segment_id=sid, version=1, definition=body, created_by=user.username, created_at=now))
    if refresh:
        refresh_segment(ctx, user.brand_id, sid)
    return get_segment(ctx, user, sid)


def _row(ctx: Context, brand_id: str, segment_id: str) -> SegmentRow:
    with ctx.sessions() as s:
        row = s.get(SegmentRow, segment_id)
    if row is None or row.brand_id != brand_id or row.archived_at is not None:
        raise NotFound(f"segment {segment_id!r} not found; list them with GET /api/segments", "segment_id")
    return row


def _definition(ctx: Context, segment_id: str, version: int) -> dict[str, Any]:
    with ctx.sessions() as s:
        v = s.scalars(
            select(SegmentVersionRow).where(
                SegmentVersionRow.segment_id == segment_id, SegmentVersionRow.version == version
            )
        ).first()
    if v is None:
        raise NotFound(f"segment {segment_id} has no version {version}", "version")
    return dict(v.definition)


def get_segment(ctx: Context, user: User, segment_id: str) -> SegmentInfo:
    """One segment with its current definition; a guide sees the count of their own members."""
    row = _row(ctx, user.brand_id, segment_id)
    info = _info(row, _definition(ctx, row.id, row.version))
    if user.role == Role.GUIDE and row.refreshed_at is not None:
        info = SegmentInfo(**{**asdict(info), "member_count": _member_count(ctx, user, row.id)})
    return info


def list_segments(ctx: Context, user: User) -> list[SegmentInfo]:
    """The brand's segments, newest first."""
    with ctx.sessions() as s:
        rows = list(
            s.scalars(
                select(SegmentRow)
                .where(SegmentRow.brand_id == user.brand_id, SegmentRow.archived_at.is_(None))
                .order_by(SegmentRow.created_at.desc())
            )
        )
    return [get_segment(ctx, user, r.id) for r in rows]


def update_segment(
    ctx: Context,
    user: User,
    segment_id: str,
    name: str | None = None,
    definition: Any = None,
    description: str | None = None,
    refresh: bool = True,
) -> SegmentInfo:
    """Rename / describe / redefine a segment; a changed definition becomes a new version (old ones are kept)."""
    require_editor(user)
    row = _row(ctx, user.brand_id, segment_id)
    new_body: dict[str, Any] | None = None
    if definition is not None:
        new_body = dump_definition(validate(definition))
        if new_body == _definition(ctx, row.id, row.version):
            new_body = None
    if name is not None:
        name = _clean_name(name)
        _check_unique(ctx, user.brand_id, name, except_id=segment_id)
    now = utcnow()
    with ctx.sessions() as s, s.begin():
        r = s.get(SegmentRow, segment_id)
        assert r is not None
        if name is not None:
            r.name = name
        if description is not None:
            r.description = description
        if new_body is not None:
            r.version += 1
            s.add(
                SegmentVersionRow(
                    segment_id=segment_id, version=r.version, definition=new_body, created_by=user.username
                )
            )
        r.updated_at = now
    if new_body is not None and refresh:
        refresh_segment(ctx, user.brand_id, segment_id)
    return get_segment(ctx, user, segment_id)


def versions(ctx: Context, user: User, segment_id: str) -> list[dict[str, Any]]:
    """Every version of a segment's definition, oldest first."""
    _row(ctx, user.brand_id, segment_id)
    with ctx.sessions() as s:
        rows = s.scalars(
            select(SegmentVersionRow)
            .where(SegmentVersionRow.segment_id == segment_id)
            .order_by(SegmentVersionRow.version)
        )
        return [
            {
                "version": v.version,
                "definition": v.definition,
                "created_by": v.created_by,
                "created_at": v.created_at.isoformat(),
            }
            for v in rows
        ]


def delete_segment(ctx: Context, user: User, segment_id: str) -> None:
    """Archive a segment (its versions stay) and close its open memberships."""
    require_editor(user)
    _row(ctx, user.brand_id, segment_id)
    now = utcnow()
    with ctx.sessions() as s, s.begin():
        r = s.get(SegmentRow, segment_id)
        assert r is not None
        r.archived_at = now
    with ctx.warehouse.write_lock, ctx.warehouse.transaction() as cur:
        cur.execute(
            "UPDATE segment_members SET exited_at = ? WHERE brand_id = ? AND segment_id = ? AND exited_at IS NULL",
            [now, user.brand_id, segment_id],
        )


# ---- live preview ---------------------------------------------------------------------------------------------


# Stage conditions (RFM, AIPL, lifecycle) cost most of a live count; while a definition is being edited their
# customer ids are kept for a short while, so changing another condition does not recompute them.
HEAVY_KINDS: frozenset[str] = frozenset({"rfm", "aipl", "lifecycle"})
LEAF_TTL_SECONDS = 120.0
_LEAF_MAX = 64
_leaf_lock = threading.Lock()
_leaf_cache: dict[tuple[int, str, str, str], tuple[float, Any]] = {}


def _cached_leaves(ctx: Context, brand_id: str, as_of: date) -> Callable[[Any, ir.Table], ir.Table]:
    """A ``substitute`` hook for the compiler: heavy leaves come from (or go into) a short-lived cache."""

    def substitute(cond: Any, expr: ir.Table) -> ir.Table:
        if cond.kind not in HEAVY_KINDS:
            return expr
        key = (id(ctx), brand_id, as_of.isoformat(), json.dumps(dump_definition(cond), sort_keys=True))
        now = time.monotonic()
        with _leaf_lock:
            hit = _leaf_cache.get(key)
        if hit is None or now - hit[0] > LEAF_TTL_SECONDS:
            hit = (now, expr.to_pyarrow())
            with _leaf_lock:
                if len(_leaf_cache) >= _LEAF_MAX:
                    _leaf_cache.pop(min(_leaf_cache, key=lambda k: _leaf_cache[k][0]))
                _leaf_cache[key] = hit
        return ibis.memtable(hit[1]).select(customer_id=ibis._.customer_id.cast("string"))

    return substitute


def customers_of(ctx: Context, user: User, cond: Condition, as_of: date, cached: bool = False) -> ir.Table:
    """The expression of a condition's customers, restricted to the user's scope (``cached``: live counts)."""
    t = tables(ctx, user.brand_id)
    hook = _cached_leaves(ctx, user.brand_id, as_of) if cached else None
    return restrict(segment_customers(t, cond, as_of, hook), scope(ctx, user))


def _with_profile(ctx: Context, brand_id: str, ids: ir.Table) -> ir.Table:
    c = tables(ctx, brand_id).customers
    return ids.join(c, ids.customer_id == c.customer_id).select(ids.customer_id, c.name, c.phone, c.city)


def preview(
    ctx: Context, user: User, definition: Any, as_of: str | date | None = None, sample: int = 20
) -> dict[str, Any]:
    """Count and a sample of the customers a definition matches now (nothing is saved)."""
    if sample < 0 or sample > MAX_SAMPLE:
        raise SiyuError(f"sample must be between 0 and {MAX_SAMPLE} (got {sample})", "sample")
    started = time.perf_counter()
    cond = validate(definition)
    day = resolve_as_of(ctx, user.brand_id, as_of)
    ids = customers_of(ctx, user, cond, day, cached=True)
    rows = ids.to_pyarrow()  # one execution: the ids; the count and the sample come from them
    count = rows.num_rows
    sample_rows: list[dict[str, Any]] = []
    if sample and count:
        first = sorted(rows.column("customer_id").to_pylist())[:sample]
        c = tables(ctx, user.brand_id).customers
        prof = (
            c.filter(c.customer_id.isin(first)).select("customer_id", "name", "phone", "city").order_by("customer_id")
        )
        sample_rows = prof.to_pyarrow().to_pylist()
    return {
        "count": count,
        "sample": sample_rows,
        "as_of": day.isoformat(),
        "elapsed_ms": round((time.perf_counter() - started) * 1000, 1),
    }


# ---- materialisation --------------------------------------------------------------------------------------------


def refresh_segment(
    ctx: Context, brand_id: str, segment_id: str, now: datetime | None = None, as_of: date | None = None
) -> dict[str, Any]:
    """Recompute a segment's members and record entries and exits in ``segment_members``."""
    now = now or utcnow()
    with ctx.sessions() as s:
        row = s.get(SegmentRow, segment_id)
    if row is None or row.brand_id != brand_id or row.archived_at is not None:
        raise NotFound(f"segment {segment_id!r} not found", "segment_id")
    day = as_of or default_as_of(ctx, brand_id)
    try:
        cond = validate(_definition(ctx, segment_id, row.version))
        seg_current = segment_customers(tables(ctx, brand_id), cond, day).to_pyarrow()
        name = "seg_current_" + uuid.uuid4().hex[:8]
        with ctx.warehouse.write_lock, ctx.warehouse.transaction() as cur:
            cur.register(name, seg_current)
            cur.execute(
                "UPDATE segment_members SET exited_at = ? WHERE brand_id = ? AND segment_id = ? "
                "AND exited_at IS NULL AND customer_id NOT IN (SELECT customer_id FROM " + name + ")",
                [now, brand_id, segment_id],
            )
            exited = _changes(cur)
            cur.execute(
                "INSERT INTO segment_members (brand_id, segment_id, customer_id, entered_at, exited_at) "
                f"SELECT ?, ?, c.customer_id, ?, NULL FROM {name} c WHERE c.customer_id NOT IN ("
                "SELECT customer_id FROM segment_members WHERE brand_id = ? AND segment_id = ? AND exited_at IS NULL)",
                [brand_id, segment_id, now, brand_id, segment_id],
            )
            entered = _changes(cur)
            cur.unregister(name)
        members = seg_current.num_rows
        error = None
    except Exception as exc:  # recorded on the segment (shown in the list); the other segments still refresh
        entered = exited = 0
        members = row.member_count or 0
        if isinstance(exc, SiyuError):
            error = exc.message
        else:
            log.exception("refreshing segment %s of brand %s failed", segment_id, brand_id)
            error = f"{type(exc).__name__}: {exc}"
    with ctx.sessions() as s, s.begin():
        r = s.get(SegmentRow, segment_id)
        assert r is not None
        r.refreshed_at = now
        r.refresh_error = error
        if error is None:
            r.member_count = members
    return {
        "segment_id": segment_id,
        "members": members,
        "entered": entered,
        "exited": exited,
        "as_of": day.isoformat(),
        "refreshed_at": now.isoformat(),
        "error": error,
    }


def _changes(cur: Any) -> int:
    row = cur.fetchone()
    return int(row[0]) if row else 0


def refresh_brand(ctx: Context, brand_id: str, now: datetime | None = None) -> list[dict[str, Any]]:
    """Refresh every active segment of a brand."""
    get_brand(ctx, brand_id)
    with ctx.sessions() as s:
        ids = list(
            s.scalars(select(SegmentRow.id).where(SegmentRow.brand_id == brand_id, SegmentRow.archived_at.is_(None)))
        )
    day = default_as_of(ctx, brand_id) if ids else None
    return [refresh_segment(ctx, brand_id, sid, now=now, as_of=day) for sid in ids]


def refresh_all(ctx: Context) -> dict[str, int]:
    """Refresh every segment of every brand (the scheduled job). Returns segments refreshed per brand."""
    with ctx.sessions() as s:
        brands = list(s.scalars(select(BrandRow.id)))
    done: dict[str, int] = {}
    for b in brands:
        try:
            done[b] = len(refresh_brand(ctx, b))
        except Exception:  # one brand's failure must not stop the others
            log.exception("refreshing the segments of brand %s failed", b)
    return done


def members_table(ctx: Context, user: User, segment_id: str) -> ir.Table:
    """Current members (``exited_at`` NULL) of a segment with profile columns, in the user's scope."""
    row = _row(ctx, user.brand_id, segment_id)
    if row.refreshed_at is None:
        refresh_segment(ctx, user.brand_id, segment_id)
    m = ctx.warehouse.ibis.table("segment_members")
    m = m.filter((m.brand_id == user.brand_id) & (m.segment_id == segment_id) & m.exited_at.isnull())
    m = restrict(m, scope(ctx, user))
    c = tables(ctx, user.brand_id).customers
    j = m.left_join(c, m.customer_id == c.customer_id)
    return j.select(m.customer_id, c.name, c.phone, c.city, m.entered_at)


def _member_count(ctx: Context, user: User, segment_id: str) -> int:
    m = ctx.warehouse.ibis.table("segment_members")
    m = m.filter((m.brand_id == user.brand_id) & (m.segment_id == segment_id) & m.exited_at.isnull())
    return int(restrict(m, scope(ctx, user)).count().execute())


def members(ctx: Context, user: User, segment_id: str, page: int = 1, page_size: int = 50) -> dict[str, Any]:
    """A page of a segment's current members (guides: their own customers only) and the total."""
    if page < 1:
        raise SiyuError(f"page must be 1 or more (got {page})", "page")
    if page_size < 1 or page_size > MAX_PAGE_SIZE:
        raise SiyuError(f"page_size must be between 1 and {MAX_PAGE_SIZE} (got {page_size})", "page_size")
    expr = members_table(ctx, user, segment_id)
    total = int(expr.count().execute())
    rows = expr.order_by([ibis.desc("entered_at"), "customer_id"]).limit(page_size, offset=(page - 1) * page_size)
    items = rows.to_pyarrow().to_pylist()
    for r in items:
        r["entered_at"] = r["entered_at"].isoformat() if r.get("entered_at") else None
    return {"items": items, "total": total, "page": page, "page_size": page_size}


def members_frame(ctx: Context, user: User, segment_id: str) -> pd.DataFrame:
    """All current members as a DataFrame (export)."""
    frame: pd.DataFrame = members_table(ctx, user, segment_id).order_by("customer_id").to_pandas()
    return frame[list(MEMBER_COLUMNS)]


def export_members(
    ctx: Context, user: User, segment_id: str, fmt: str, clear_pii: bool = False
) -> tuple[bytes, str, str]:
    """Members as CSV / XLSX / Parquet: (bytes, media type, file name). Phones and emails are SHA-256 hashed unless
    ``clear_pii`` (admins only; the API audits it)."""
    if clear_pii and user.role != Role.ADMIN:
        raise Forbidden("only an admin may export phones and emails in clear text; leave pii=hashed", "pii")
    frame = members_frame(ctx, user, segment_id)
    data, media = export_frame(frame if clear_pii else hash_pii(frame), fmt)
    return data, media, f"segment-{segment_id}.{fmt}"


def entries_since(ctx: Context, brand_id: str, segment_id: str, since: datetime) -> list[dict[str, Any]]:
    """Customers who entered the segment at or after ``since`` (for journeys triggered on entry)."""
    m = ctx.warehouse.ibis.table("segment_members")
    m = m.filter((m.brand_id == brand_id) & (m.segment_id == segment_id) & (m.entered_at >= since))
    rows: list[dict[str, Any]] = (
        m.select("customer_id", "entered_at", "exited_at").order_by("entered_at").to_pyarrow().to_pylist()
    )
    return rows


def history(ctx: Context, brand_id: str, segment_id: str) -> pd.DataFrame:
    """Every stay of every member (entered_at, exited_at), for audits and tests."""
    m = ctx.warehouse.ibis.table("segment_members")
    m = m.filter((m.brand_id == brand_id) & (m.segment_id == segment_id))
    out: pd.DataFrame = m.select("customer_id", "entered_at", "exited_at").to_pandas()
    return out
