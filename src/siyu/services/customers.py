"""Customer search and the customer 360 view, scoped by the user's role.

A guide (导购) user sees only their reachable customers: an active WeCom relation (``relations`` state='active',
guide_id = the user's guide_id, joined through ``identities`` type 'external_userid'), a current membership of a
customer group they own (``group_members`` of a ``touchpoints`` row with their guide_id), plus the customer-pool
leads the guide owns (``siyu.services.guide_work.pool``).
Admins and operators see every customer of their brand. All reads are Ibis expressions.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import ibis
import ibis.expr.types as ir

from siyu.domain.identity import IdentifierError, IdType, normalize
from siyu.domain.models import Role
from siyu.services import oneid
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import NotFound, SiyuError

MAX_PAGE_SIZE = 200
MAX_EVENTS_LIMIT = 200
_PHONE_LIKE = re.compile(r"^\+?[\d\s\-()]{7,20}$")


@dataclass(frozen=True)
class CustomerSummary:
    """One row of a customer search result."""

    customer_id: str
    name: str | None
    phone: str | None
    email: str | None
    city: str | None
    updated_at: datetime | None


@dataclass(frozen=True)
class SearchResult:
    """A page of customers and the total count matching the query."""

    items: list[CustomerSummary]
    total: int
    page: int
    page_size: int


@dataclass
class Customer360:
    """Everything known about one customer, ready to render or serialise."""

    customer_id: str
    profile: dict[str, Any]
    identities: list[dict[str, Any]]
    relations: list[dict[str, Any]]
    tags: list[dict[str, Any]]
    orders: list[dict[str, Any]]
    events: list[dict[str, Any]]
    events_total: int
    events_page: int
    events_limit: int
    merges: list[dict[str, Any]]
    requested_id: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict (datetimes as ISO strings, decimals as strings)."""
        return _jsonable(
            {
                "customer_id": self.customer_id,
                "requested_id": self.requested_id or self.customer_id,
                "profile": self.profile,
                "identities": self.identities,
                "relations": self.relations,
                "tags": self.tags,
                "orders": self.orders,
                "events": {
                    "items": self.events,
                    "total": self.events_total,
                    "page": self.events_page,
                    "limit": self.events_limit,
                },
                "merges": self.merges,
            }
        )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


_tls = threading.local()


def _table(ctx: Context, name: str) -> ir.Table:
    """A warehouse table on this thread's Ibis backend (``Warehouse.ibis``), with its schema cached per thread."""
    backend = ctx.warehouse.ibis
    if getattr(_tls, "backend", None) is not backend:
        _tls.backend = backend
        _tls.tables = {}
    tables: dict[str, ir.Table] = _tls.tables
    if name not in tables:  # the schema lookup costs a query; warehouse tables are fixed for the process
        tables[name] = backend.table(name)
    return tables[name]


def _records(expr: ir.Table) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = expr.to_pyarrow().to_pylist()
    return rows


def _count(expr: ir.Table) -> int:
    return int(expr.count().execute())


def _check_paging(page: int, size: int, size_field: str, max_size: int, page_field: str = "page") -> None:
    if page < 1:
        raise SiyuError(f"{page_field} must be 1 or more (got {page})", field=page_field)
    if size < 1 or size > max_size:
        raise SiyuError(
            f"{size_field} must be between 1 and {max_size} (got {size}); ask for fewer rows", field=size_field
        )


def guide_scope(ctx: Context, user: User, backend: Any = None) -> ir.Table | None:
    """Customer ids (column ``customer_id``) the user may see, or None when the user sees the whole brand.

    A guide's own customers are their *reachable* customers (``assets.reachable``): an active WeCom relation with
    them, a current membership of a customer group they own (``touchpoints.guide_id``), or a pool lead they own.
    Built on ``backend`` when given (the analytics engine of ``SIYU_WAREHOUSE``), else on the DuckDB warehouse."""
    if user.role != Role.GUIDE:
        return None

    def table(name: str) -> ir.Table:
        return backend.table(name) if backend is not None else _table(ctx, name)

    guide = user.guide_id or ""
    rel, ids = table("relations"), table("identities")
    rel = rel.filter(rel.brand_id == user.brand_id, rel.state == "active", rel.guide_id == guide)
    ids = ids.filter(ids.brand_id == user.brand_id)
    ext = ids.filter(ids.id_type == IdType.EXTERNAL_USERID.value)
    scope = rel.join(ext, rel.external_userid == ext.id_value).select(ext.customer_id)
    tp, gm = table("touchpoints"), table("group_members")
    owned = tp.filter(tp.brand_id == user.brand_id, tp.guide_id == guide).select(g_tp=tp.touchpoint_id)
    gm = gm.filter(gm.brand_id == user.brand_id, gm.left_at.isnull())
    gm = gm.join(owned, gm.touchpoint_id == owned.g_tp)
    members = gm.join(ids, (gm.id_type == ids.id_type) & (gm.id_value == ids.id_value)).select(ids.customer_id)
    scope = scope.union(members)
    from siyu.services.guide_work.pool import owned_ids  # the pool leads a guide owns are theirs too

    leads = owned_ids(ctx, user.brand_id, guide)
    if leads:
        scope = scope.union(ibis.memtable({"customer_id": leads}, schema={"customer_id": "string"}))
    return scope.distinct()


def _canonical_id(ctx: Context, brand_id: str, customer_id: str) -> str:
    """Follow merge history from a merged-away customer id to the surviving one."""
    return oneid.resolve_customer_id(ctx, brand_id, customer_id) or customer_id


def resolve_customer(ctx: Context, user: User, customer_id: str) -> str:
    """The current id of ``customer_id`` (merged-away ids map to the survivor) if the user may see it.

    Raises NotFound when the customer does not exist or is outside a guide's scope (same answer, so a guide
    cannot probe for other guides' customers).
    """
    cid = _canonical_id(ctx, user.brand_id, customer_id)
    cust = _table(ctx, "customers")
    expr = cust.filter(cust.brand_id == user.brand_id, cust.customer_id == cid)
    scope = guide_scope(ctx, user)
    if scope is not None:
        expr = expr.filter(expr.customer_id.isin(scope.customer_id))
    if _count(expr) == 0:
        raise NotFound(f"customer {customer_id!r} not found (or not one of your customers)", field="customer_id")
    return cid


def search_customers(ctx: Context, user: User, q: str = "", page: int = 1, page_size: int = 20) -> SearchResult:
    """Search customers by phone, name (substring), customer id, any identifier value or tag name."""
    _check_paging(page, page_size, "page_size", MAX_PAGE_SIZE)
    brand = user.brand_id
    cust = _table(ctx, "customers")
    expr = cust.filter(cust.brand_id == brand)
    query = q.strip()
    if query:
        ids = _table(ctx, "identities")
        ids = ids.filter(ids.brand_id == brand)
        values = {query}
        if _PHONE_LIKE.match(query):
            with contextlib.suppress(IdentifierError):
                values.add(normalize(IdType.PHONE.value, query).value)
        by_identifier = ids.filter(ids.id_value.isin(list(values))).select("customer_id")
        tags = _table(ctx, "tags")
        itags = _table(ctx, "identifier_tags")
        tags = tags.filter(tags.brand_id == brand, tags.name.lower() == query.lower())
        itags = itags.filter(itags.brand_id == brand)
        tagged = itags.join(tags, itags.tag_id == tags.tag_id).select(itags.id_type, itags.id_value)
        by_tag = ids.join(tagged, [ids.id_type == tagged.id_type, ids.id_value == tagged.id_value]).select(
            ids.customer_id
        )
        expr = expr.filter(
            (expr.customer_id == query)
            | expr.name.contains(query)
            | expr.phone.isin(list(values))
            | expr.customer_id.isin(by_identifier.customer_id)
            | expr.customer_id.isin(by_tag.customer_id)
        )
    scope = guide_scope(ctx, user)
    if scope is not None:
        expr = expr.filter(expr.customer_id.isin(scope.customer_id))
    total = _count(expr)
    rows = _records(
        expr.order_by([ibis.desc("updated_at"), "customer_id"])
        .select("customer_id", "name", "phone", "email", "city", "updated_at")
        .limit(page_size, offset=(page - 1) * page_size)
    )
    return SearchResult([CustomerSummary(**r) for r in rows], total, page, page_size)


def _customer_identities(ctx: Context, brand: str, cid: str) -> ir.Table:
    ids = _table(ctx, "identities")
    return ids.filter(ids.brand_id == brand, ids.customer_id == cid)


def customer_events(
    ctx: Context, brand: str, cid: str, page: int = 1, limit: int = 20
) -> tuple[list[dict[str, Any]], int]:
    """One page of the customer's events (newest first) and their total count."""
    _check_paging(page, limit, "events_limit", MAX_EVENTS_LIMIT, page_field="events_page")
    ids = _customer_identities(ctx, brand, cid)
    user_ids = ids.filter(ids.id_type == IdType.USER_ID.value).select("id_value")
    anon_ids = ids.filter(ids.id_type == IdType.ANONYMOUS_ID.value).select("id_value")
    ev = _table(ctx, "events")
    ev = ev.filter(ev.brand_id == brand, ev.user_id.isin(user_ids.id_value) | ev.anonymous_id.isin(anon_ids.id_value))
    total = _count(ev)
    rows = _records(
        ev.order_by([ibis.desc("timestamp"), ibis.desc("message_id")])
        .select("message_id", "type", "event", "name", "user_id", "anonymous_id", "properties", "timestamp")
        .limit(limit, offset=(page - 1) * limit)
    )
    for row in rows:
        props = row.get("properties")
        if isinstance(props, str):
            with contextlib.suppress(ValueError):
                row["properties"] = json.loads(props)
    return rows, total


def get_customer_360(
    ctx: Context, user: User, customer_id: str, events_page: int = 1, events_limit: int = 20
) -> Customer360:
    """The 360 view of one customer the user may see (merged-away ids resolve to the survivor)."""
    _check_paging(events_page, events_limit, "events_limit", MAX_EVENTS_LIMIT, page_field="events_page")
    cid = resolve_customer(ctx, user, customer_id)
    brand = user.brand_id
    cust = _table(ctx, "customers")
    profile = _records(cust.filter(cust.brand_id == brand, cust.customer_id == cid))[0]
    profile.pop("brand_id", None)
    if isinstance(profile.get("traits"), str):
        with contextlib.suppress(ValueError):
            profile["traits"] = json.loads(profile["traits"])
    ids = _customer_identities(ctx, brand, cid)
    identities = _records(
        ids.select("id_type", "id_value", "first_seen_at", "last_seen_at").order_by(["id_type", "id_value"])
    )

    rel = _table(ctx, "relations")
    guides = _table(ctx, "guides")
    rel = rel.filter(rel.brand_id == brand)
    ext = ids.filter(ids.id_type == IdType.EXTERNAL_USERID.value)
    rel = rel.join(ext, rel.external_userid == ext.id_value).select(rel)
    guides = guides.filter(guides.brand_id == brand).select("guide_id", guide_name=guides.name)
    rel = rel.left_join(guides, rel.guide_id == guides.guide_id).select(
        rel.external_userid,
        rel.guide_id,
        guides.guide_name,
        rel.state,
        rel.added_at,
        rel.add_way,
        rel.lost_at,
        rel.lost_by,
        rel.channel_id,
    )
    relations = _records(rel.order_by([rel.state, ibis.desc(rel.added_at)]))

    tags_t = _table(ctx, "tags")
    itags = _table(ctx, "identifier_tags")
    itags = itags.filter(itags.brand_id == brand)
    on_ids = itags.join(ids, [itags.id_type == ids.id_type, itags.id_value == ids.id_value]).select(
        itags.tag_id, itags.source, itags.created_at
    )
    tags_t = tags_t.filter(tags_t.brand_id == brand)
    tagged = on_ids.join(tags_t, on_ids.tag_id == tags_t.tag_id).select(
        on_ids.tag_id, tags_t.name, on_ids.source, on_ids.created_at
    )
    tags = _records(
        tagged.group_by(["tag_id", "name"])
        .aggregate(source=tagged.source.min(), created_at=tagged.created_at.min())
        .order_by("name")
    )

    orders_t = _table(ctx, "orders")
    lines = _table(ctx, "order_lines")
    orders_t = orders_t.filter(orders_t.brand_id == brand)
    own = orders_t.join(ids, [orders_t.customer_ref_type == ids.id_type, orders_t.customer_ref == ids.id_value]).select(
        orders_t
    )
    own = own.distinct()
    lines = lines.filter(lines.brand_id == brand)
    counts = lines.group_by("order_id").aggregate(lines_count=lines.count())
    joined = own.left_join(counts, own.order_id == counts.order_id).select(
        own.order_id,
        own.ordered_at,
        own.amount,
        own.currency,
        own.status,
        own.channel_id,
        own.store_id,
        own.guide_id,
        lines_count=counts.lines_count.fill_null(0),
    )
    orders = _records(joined.order_by([ibis.desc("ordered_at"), "order_id"]))

    events, events_total = customer_events(ctx, brand, cid, events_page, events_limit)

    merges = list(reversed(oneid.merge_history(ctx, brand, cid)))  # newest first
    return Customer360(
        customer_id=cid,
        profile=profile,
        identities=identities,
        relations=relations,
        tags=tags,
        orders=orders,
        events=events,
        events_total=events_total,
        events_page=events_page,
        events_limit=events_limit,
        merges=merges,
        requested_id=customer_id,
    )
