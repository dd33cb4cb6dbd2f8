"""Seeding the demo brand: generate chunk by chunk, bulk-insert, resolve OneID, create the demo logins."""

from __future__ import annotations

import importlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import select

from siyu.domain.models import Role
from siyu.services.brands import create_user, ensure_brand
from siyu.services.context import Context
from siyu.services.demo.config import CHANNELS, CHUNK_CUSTOMERS, GUIDE_NAMES, DemoConfig
from siyu.services.demo.events import generate_events
from siyu.services.demo.orders import generate_orders
from siyu.services.demo.people import generate_people
from siyu.services.demo.wecom import generate_wecom
from siyu.services.demo.writer import write_chunk, write_dimensions, write_spend
from siyu.services.errors import Conflict
from siyu.stores.state.models import UserRow

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total): stages are dimensions, customers, spend, oneid, logins."""

STAGES = ("dimensions", "customers", "spend", "oneid", "logins")


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    role: Role
    guide_id: str | None = None
    display_name: str = ""


@dataclass
class SeedResult:
    """What ``seed_demo`` did. ``seeded`` is False when the brand was already seeded (nothing changed)."""

    brand_id: str
    seeded: bool
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    oneid: str = ""  # "rebuilt", "skipped (...)" or "" when nothing was seeded
    logins: list[DemoLogin] = field(default_factory=list)


def _marker(brand_id: str) -> str:
    return f"demo:{brand_id}"


def demo_logins(brand_id: str) -> list[DemoLogin]:
    """The console logins of a demo brand (usernames get a ``<brand>.`` prefix for brands other than demo)."""
    prefix = "" if brand_id == "demo" else f"{brand_id}."
    logins = [
        DemoLogin(f"{prefix}admin", "siyu-admin", Role.ADMIN, display_name="管理员 Admin"),
        DemoLogin(f"{prefix}operator", "siyu-operator", Role.OPERATOR, display_name="运营 Operator"),
    ]
    logins += [
        DemoLogin(f"{prefix}guide{i + 1}", "siyu-guide", Role.GUIDE, f"g{i + 1:02d}", f"导购 {name}")
        for i, name in enumerate(GUIDE_NAMES)
    ]
    return logins


def seeded_info(ctx: Context, brand_id: str) -> dict[str, object] | None:
    """The record of a finished demo seed of this brand, or None."""
    rows = ctx.warehouse.fetch("SELECT value FROM wh_meta WHERE key = ?", [_marker(brand_id)])
    return json.loads(rows[0][0]) if rows else None


def brand_tables(ctx: Context) -> list[str]:
    """Warehouse tables that hold per-brand rows (they have a brand_id column)."""
    rows = ctx.warehouse.fetch(
        "SELECT table_name FROM information_schema.columns WHERE column_name = 'brand_id' "
        "AND table_schema = current_schema() ORDER BY table_name"
    )
    return [r[0] for r in rows]


def has_rows(ctx: Context, brand_id: str) -> bool:
    return any(
        ctx.warehouse.fetch(f"SELECT 1 FROM {t} WHERE brand_id = ? LIMIT 1", [brand_id]) for t in brand_tables(ctx)
    )


def delete_brand_rows(ctx: Context, brand_id: str) -> None:
    """Delete every warehouse row of a brand (used by ``--force``); state (brand, users) is kept."""
    with ctx.warehouse.write_lock, ctx.warehouse.transaction() as cur:
        for table in brand_tables(ctx):
            cur.execute(f"DELETE FROM {table} WHERE brand_id = ?", [brand_id])
        cur.execute("DELETE FROM wh_meta WHERE key = ?", [_marker(brand_id)])


def ensure_logins(ctx: Context, brand_id: str) -> list[DemoLogin]:
    """Create the demo logins that do not exist yet; returns all of them."""
    logins = demo_logins(brand_id)
    with ctx.sessions() as s:
        existing = set(s.scalars(select(UserRow.username).where(UserRow.username.in_([x.username for x in logins]))))
    for x in logins:
        if x.username not in existing:
            create_user(ctx, brand_id, x.username, x.password, x.role, x.guide_id, x.display_name)
    return logins


def _rebuild_oneid(ctx: Context, brand_id: str) -> str:
    try:  # built by the OneID area; optional until it lands
        oneid = importlib.import_module("siyu.services.oneid")
    except ImportError as exc:
        return f"skipped ({exc})"
    try:
        stats = oneid.rebuild(ctx, brand_id)
    except Exception as exc:  # the seeded rows stay; OneID can be rebuilt later
        log.exception("OneID rebuild of the demo brand failed")
        return f"failed ({exc!r}); the data is seeded, rebuild OneID for brand {brand_id!r} later"
    return f"rebuilt: {stats}"


def seed_demo(
    ctx: Context,
    cfg: DemoConfig,
    force: bool = False,
    progress: Progress | None = None,
    resolve: bool = True,
) -> SeedResult:
    """Build the deterministic demo brand ``cfg.brand_id``; a seeded brand is left alone unless ``force``.

    ``resolve=False`` skips the final OneID rebuild (for generator-only benchmarks).
    """
    cfg.validate()
    report = progress or (lambda stage, done, total: None)
    started = time.perf_counter()
    ensure_brand(ctx, cfg.brand_id, cfg.brand_name)
    if seeded_info(ctx, cfg.brand_id) is not None and not force:
        return SeedResult(cfg.brand_id, seeded=False, logins=ensure_logins(ctx, cfg.brand_id))
    if force:
        delete_brand_rows(ctx, cfg.brand_id)
    elif has_rows(ctx, cfg.brand_id):
        raise Conflict(
            f"brand {cfg.brand_id!r} already has warehouse data that is not a finished demo seed; "
            f"run `siyu demo seed --brand {cfg.brand_id} --force` to delete it and seed again, or pick another --brand",
            field="brand",
        )
    counts: dict[str, int] = {}

    def add(part: dict[str, int]) -> None:
        for k, v in part.items():
            counts[k] = counts.get(k, 0) + v

    report("dimensions", 0, 1)
    with ctx.warehouse.write_lock, ctx.warehouse.transaction() as cur:
        add(write_dimensions(cur, cfg))
    report("dimensions", 1, 1)

    spend_counts = np.zeros((len(CHANNELS), cfg.days), dtype=np.int64)
    report("customers", 0, cfg.customers)
    for chunk, first in enumerate(range(0, cfg.customers, CHUNK_CUSTOMERS)):
        n = min(CHUNK_CUSTOMERS, cfg.customers - first)
        people = generate_people(cfg, first, n, chunk)
        wc = generate_wecom(cfg, people, chunk)
        orders = generate_orders(cfg, people, wc.added, wc.added_s, chunk)
        events = generate_events(cfg, people, wc, chunk)
        with ctx.warehouse.write_lock, ctx.warehouse.transaction() as cur:
            add(write_chunk(cur, cfg, people, wc, orders, events, chunk, spend_counts))
        add({"customers": n})
        report("customers", first + n, cfg.customers)

    report("spend", 0, 1)
    with ctx.warehouse.write_lock, ctx.warehouse.transaction() as cur:
        add({"channel_spend": write_spend(cur, cfg, spend_counts)})
        info = {"customers": cfg.customers, "seed": cfg.seed, "months": cfg.months, "end": cfg.end.isoformat()}
        cur.execute(
            "INSERT OR REPLACE INTO wh_meta VALUES (?, ?)",
            [_marker(cfg.brand_id), json.dumps({**info, "counts": counts}, ensure_ascii=False)],
        )
    report("spend", 1, 1)

    report("oneid", 0, 1)
    oneid = _rebuild_oneid(ctx, cfg.brand_id) if resolve else "skipped (--no-oneid)"
    ctx.warehouse.checkpoint()
    report("oneid", 1, 1)
    report("logins", 0, 1)
    logins = ensure_logins(ctx, cfg.brand_id)
    report("logins", 1, 1)
    return SeedResult(cfg.brand_id, True, counts, time.perf_counter() - started, oneid, logins)
