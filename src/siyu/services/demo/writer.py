"""Turns generated arrays into Arrow tables and bulk-inserts them into the warehouse (one chunk at a time)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from siyu.domain.models import TouchpointKind
from siyu.services.demo.config import CHANNELS, GROUPS, GUIDE_NAMES, OWNED_TOUCHPOINTS, PRODUCTS, STORES, DemoConfig
from siyu.services.demo.events import CONTEXT, guide_ids, invite_ids
from siyu.services.demo.orders import SALES_CHANNELS, Orders, order_ids
from siyu.services.demo.people import MARKETPLACE, People
from siyu.services.demo.text import BoolArray, IntArray, dec, join, nullify, pick, take, timestamps
from siyu.services.demo.wecom import GUIDES_PER_STORE, Wecom

DAY = 86_400
STORE_IDS = [s[0] for s in STORES]


def insert(cur: duckdb.DuckDBPyConnection, table: str, data: pa.Table, select: str = "*", columns: str = "") -> int:
    """Bulk insert an Arrow table: ``INSERT INTO table (columns) SELECT <select> FROM data``.

    ``columns`` defaults to the Arrow column names when ``select`` is ``*``, else to all of the table's columns.
    """
    if data.num_rows == 0:
        return 0
    cur.register("demo_batch", data)
    try:
        cols = columns or (", ".join(data.column_names) if select == "*" else "")
        target = f"{table} ({cols})" if cols else table
        cur.execute(f"INSERT INTO {target} SELECT {select} FROM demo_batch")
    finally:
        cur.unregister("demo_batch")
    return data.num_rows


def _const(value: str | None, n: int) -> pa.Array:
    return pa.repeat(pa.scalar(value, pa.string()), n)


def write_dimensions(cur: duckdb.DuckDBPyConnection, cfg: DemoConfig) -> dict[str, int]:
    """Stores, guides (导购), public channels and owned touchpoints."""
    b = cfg.brand_id
    stores = pa.table(
        {
            "brand_id": [b] * len(STORES),
            "store_id": STORE_IDS,
            "name": [s[1] for s in STORES],
            "city": [s[2] for s in STORES],
        }
    )
    g = np.arange(len(GUIDE_NAMES))
    gids = guide_ids(g).to_pylist()
    guides = pa.table(
        {
            "brand_id": [b] * len(g),
            "guide_id": gids,
            "name": list(GUIDE_NAMES),
            "store_id": [STORE_IDS[i // GUIDES_PER_STORE] for i in g],
            "wecom_userid": [f"LanYan{i + 1:02d}" for i in g],
            "active": [True] * len(g),
        }
    )
    channels = pa.table(
        {
            "brand_id": [b] * len(CHANNELS),
            "channel_id": [c.channel_id for c in CHANNELS],
            "name": [c.name for c in CHANNELS],
            "kind": [c.kind.value for c in CHANNELS],
        }
    )
    tps: list[tuple[str, str, str, str | None]] = [
        (f"tp_wecom_{gid}", f"{name} 的企微好友", TouchpointKind.WECOM_CONTACT.value, gid)
        for gid, name in zip(gids, GUIDE_NAMES, strict=True)
    ]
    tps += [
        (tid, name, TouchpointKind.CUSTOMER_GROUP.value, gids[(i * 2) % len(gids)])
        for i, (tid, name) in enumerate(GROUPS)
    ]
    tps += [(tid, name, kind.value, None) for tid, name, kind in OWNED_TOUCHPOINTS]
    touchpoints = pa.table(
        {
            "brand_id": [b] * len(tps),
            "touchpoint_id": [t[0] for t in tps],
            "name": [t[1] for t in tps],
            "kind": [t[2] for t in tps],
            "guide_id": pa.array([t[3] for t in tps], pa.string()),
        }
    )
    return {
        "stores": insert(cur, "stores", stores),
        "guides": insert(cur, "guides", guides),
        "channels": insert(cur, "channels", channels),
        "touchpoints": insert(cur, "touchpoints", touchpoints),
    }


@dataclass
class _Obs:
    """Observations of one kind: rows of a chunk, when, up to a few identifier slots, and traits."""

    rows: IntArray
    at_s: IntArray
    source_ref: pa.Array
    slots: list[tuple[str, pa.Array, BoolArray]]  # (type, values for the rows, present)
    traits: pa.Array


def _observations(cfg: DemoConfig, parts: list[_Obs]) -> pa.Table:
    tables = []
    for part in parts:
        n = len(part.rows)
        if n == 0:
            continue
        present = np.stack([s[2] for s in part.slots], axis=1)  # rows × slots
        row, slot = np.nonzero(present)  # row-major: identifiers of a row stay together
        values = pa.concat_arrays([s[1] for s in part.slots])
        types = pa.array([s[0] for s in part.slots])
        flat_values = take(values, slot * n + row)
        flat_types = take(types, slot)
        offsets = np.concatenate([[0], np.cumsum(present.sum(axis=1))]).astype(np.int32)
        structs = pa.StructArray.from_arrays([flat_types, flat_values], names=["type", "value"])
        tables.append(
            pa.table(
                {
                    "brand_id": _const(cfg.brand_id, n),
                    "source_kind": _const("demo", n),
                    "source_ref": part.source_ref,
                    "observed_at": timestamps(cfg.start_at, part.at_s),
                    "identifiers": pa.ListArray.from_arrays(pa.array(offsets), structs),
                    "traits": part.traits,
                }
            )
        )
    table = pa.concat_tables(tables)
    return table.sort_by([("observed_at", "ascending"), ("source_ref", "ascending")])


def write_chunk(
    cur: duckdb.DuckDBPyConnection,
    cfg: DemoConfig,
    people: People,
    wc: Wecom,
    orders: Orders,
    events: pa.Table,
    chunk: int,
    spend_counts: npt.NDArray[np.int64],
) -> dict[str, int]:
    """Insert one chunk's relations, groups, orders, lines, events and identity observations.

    ``spend_counts[channel, day]`` is incremented with the chunk's adds (marketplaces: first purchases).
    """
    rng = np.random.default_rng([cfg.seed, chunk, 5])
    b, end, n = cfg.brand_id, cfg.seconds, len(people)
    counts: dict[str, int] = {}
    channel_ids = pa.array([c.channel_id for c in CHANNELS])

    # Relations (customer ↔ guide), attributed to the lead-in channel code whose state is the invite id.
    a = np.flatnonzero(wc.added)
    lost = wc.lost[a]
    counts["relations"] = insert(
        cur,
        "relations",
        pa.table(
            {
                "brand_id": _const(b, len(a)),
                "external_userid": take(wc.external_userid, a),
                "guide_id": guide_ids(wc.guide[a]),
                "added_at": timestamps(cfg.start_at, wc.added_s[a]),
                "add_way": dec(wc.add_way[a]),
                "state": pick(("active", "lost"), lost.astype(np.int64)),
                "lost_at": nullify(timestamps(cfg.start_at, wc.lost_s[a]), lost),
                "lost_by": nullify(pick(("guide", "customer"), wc.lost_by_customer[a].astype(np.int64)), lost),
                "channel_id": take(channel_ids, wc.channel[a]),
                "source_ref": take(invite_ids(people), a),
            }
        ),
    )
    np.add.at(spend_counts, (wc.channel[a], wc.added_s[a] // DAY), 1)
    m = np.flatnonzero(MARKETPLACE[people.channel])
    np.add.at(spend_counts, (people.channel[m], people.acq_s[m] // DAY), 1)

    gm = np.flatnonzero(wc.group >= 0)
    counts["group_members"] = insert(
        cur,
        "group_members",
        pa.table(
            {
                "brand_id": _const(b, len(gm)),
                "touchpoint_id": pick([g[0] for g in GROUPS], wc.group[gm]),
                "id_type": _const("unionid", len(gm)),
                "id_value": take(people.unionid, gm),
                "joined_at": timestamps(cfg.start_at, wc.joined_s[gm]),
                "left_at": nullify(timestamps(cfg.start_at, wc.left_s[gm]), wc.left[gm]),
            }
        ),
    )

    # Orders: a duplicate person's orders before being identified carry only their second phone.
    c = orders.cust
    no = len(c)
    first_order_s = np.full(n, end, dtype=np.int64)
    np.minimum.at(first_order_s, c, orders.at_s)
    dup = people.duplicate & (first_order_s < end)
    ident_s = np.minimum(first_order_s + rng.integers(3 * DAY, 90 * DAY, size=n), end - 1)
    as_phone2 = dup[c] & (orders.at_s < ident_s[c])
    store_sale = orders.sales == SALES_CHANNELS.index("ch_store")
    own_sale = orders.sales == SALES_CHANNELS.index("")
    as_member = people.member[c] & (store_sale | own_sale) & ~as_phone2
    ref_type = np.where(as_phone2, 2, np.where(as_member, 1, 0))
    ref = pc.if_else(
        pa.array(as_phone2),
        take(people.phone2, c),
        pc.if_else(pa.array(as_member), take(people.member_id, c), take(people.phone, c)),
    )
    served = wc.added[c] & (orders.at_s >= wc.added_s[c]) & (orders.at_s < wc.lost_s[c]) & (store_sale | own_sale)
    oid = order_ids(people, orders)
    sales_ids = pa.array([s or None for s in SALES_CHANNELS], pa.string())
    counts["orders"] = insert(
        cur,
        "orders",
        pa.table(
            {
                "brand_id": _const(b, no),
                "order_id": oid,
                "customer_ref_type": pick(("phone", "member_id", "phone"), ref_type),
                "customer_ref": ref,
                "ordered_at": timestamps(cfg.start_at, orders.at_s),
                "amount_cents": pa.array(orders.amount_cents),
                "currency": _const("CNY", no),
                "status": pick(("paid", "refunded"), orders.refunded.astype(np.int64)),
                "channel_id": take(sales_ids, orders.sales),
                "store_id": nullify(pick(STORE_IDS, people.store[c]), store_sale),
                "guide_id": nullify(guide_ids(wc.guide[c]), served),
                "source_ref": _const("demo", no),
            }
        ),
        select="brand_id, order_id, customer_ref_type, customer_ref, ordered_at, "
        "CAST(amount_cents AS DECIMAL(18, 2)) / 100, currency, status, channel_id, store_id, guide_id, source_ref",
    )
    nl = len(orders.line_order)
    counts["order_lines"] = insert(
        cur,
        "order_lines",
        pa.table(
            {
                "brand_id": _const(b, nl),
                "order_id": take(oid, orders.line_order),
                "line_no": pa.array(orders.line_no.astype(np.int32)),
                "sku": pick([p[0] for p in PRODUCTS], orders.line_product),
                "name": pick([p[1] for p in PRODUCTS], orders.line_product),
                "quantity": pa.array(orders.line_qty.astype(np.int64)),
                "unit_cents": pa.array(orders.line_unit_cents),
                "amount_cents": pa.array(orders.line_amount_cents),
            }
        ),
        select="brand_id, order_id, line_no, sku, name, quantity, CAST(unit_cents AS DECIMAL(18, 4)) / 100, "
        "CAST(amount_cents AS DECIMAL(18, 2)) / 100",
    )

    ne = events.num_rows
    received = pc.add(events["timestamp"], pa.scalar(2_000_000, pa.duration("us")))
    ev = events.append_column("brand_id", _const(b, ne)).append_column("received_at", received)
    counts["events"] = insert(
        cur,
        "events",
        ev,
        select=f"brand_id, message_id, type, event, name, user_id, anonymous_id, NULL, NULL, "
        f"CAST(properties AS JSON), NULL, '{CONTEXT}'::JSON, timestamp, timestamp, timestamp, received_at, NULL",
    )

    # Identity observations (the OneID evidence), one per source record that reveals identifiers.
    everyone = np.arange(n)
    traits = join(
        '{"name":"',
        people.name,
        '","gender":"',
        people.gender,
        '","birthday":"',
        pc.cast(people.birthday, pa.string()),
        '","city":"',
        people.city,
        '","phone":"',
        people.phone,
        '"}',
    )
    name_only = join('{"name":"', people.name, '"}')
    ones = np.ones(n, dtype=bool)
    first_dup_order = np.flatnonzero(_first_of(c, as_phone2))
    ad = np.flatnonzero(wc.added)
    op = np.flatnonzero(people.has_openid)
    an = np.flatnonzero(people.has_anon)
    du = np.flatnonzero(dup)
    dcust = c[first_dup_order]
    parts = [
        _Obs(
            everyone,
            people.acq_s,
            join("crm#", people.user_id),
            [
                ("phone", people.phone, ones),
                ("user_id", people.user_id, ones),
                ("member_id", people.member_id.fill_null(""), people.member),
                ("unionid", people.unionid, people.has_unionid),
            ],
            traits,
        ),
        _Obs(
            ad,
            wc.added_s[ad],
            join("wecom#", take(wc.external_userid, ad)),
            [
                ("external_userid", take(wc.external_userid, ad), np.ones(len(ad), bool)),
                ("unionid", take(people.unionid, ad), np.ones(len(ad), bool)),
            ],
            take(name_only, ad),
        ),
        _Obs(
            op,
            np.minimum(people.acq_s[op] + rng.integers(60, 10 * DAY, len(op)), end - 1),
            join("mini_program#", take(people.openid, op)),
            [
                ("openid", take(people.openid, op), np.ones(len(op), bool)),
                ("unionid", take(people.unionid, op), np.ones(len(op), bool)),
            ],
            pa.nulls(len(op), pa.string()),
        ),
        _Obs(
            an,
            np.minimum(people.acq_s[an] + rng.integers(60, 3 * DAY, len(an)), end - 1),
            join("identify#", take(people.anonymous_id, an)),
            [
                ("anonymous_id", take(people.anonymous_id, an), np.ones(len(an), bool)),
                ("user_id", take(people.user_id, an), np.ones(len(an), bool)),
            ],
            pa.nulls(len(an), pa.string()),
        ),
        _Obs(
            dcust,
            orders.at_s[first_dup_order],
            join("orders#", take(oid, first_dup_order)),
            [("phone", take(people.phone2, dcust), np.ones(len(dcust), bool))],
            take(name_only, dcust),
        ),
        _Obs(
            du,
            ident_s[du],
            join("mini_program#bind-", dec(people.idx[du], 9)),
            [
                ("phone", take(people.phone2, du), np.ones(len(du), bool)),
                ("unionid", take(people.unionid, du), np.ones(len(du), bool)),
            ],
            pa.nulls(len(du), pa.string()),
        ),
    ]
    counts["identity_observations"] = insert(
        cur,
        "identity_observations",
        _observations(cfg, parts),
        select="brand_id, source_kind, source_ref, observed_at, "
        "CAST(identifiers AS STRUCT(type VARCHAR, value VARCHAR)[]), CAST(traits AS JSON)",
        columns="brand_id, source_kind, source_ref, observed_at, identifiers, traits",
    )
    counts["duplicate_people"] = len(du)
    return counts


def _first_of(cust: IntArray, mask: BoolArray) -> BoolArray:
    """True at the first position (orders are sorted by customer, then time) of each customer where mask holds."""
    pos = np.flatnonzero(mask)
    out = np.zeros(len(cust), dtype=bool)
    if len(pos):
        keep = np.concatenate([[True], cust[pos][1:] != cust[pos][:-1]])
        out[pos[keep]] = True
    return out


def write_spend(cur: duckdb.DuckDBPyConnection, cfg: DemoConfig, spend_counts: npt.NDArray[np.int64]) -> int:
    """Daily spend and exposures per channel: exposures × the day's add rate ≈ the day's adds."""
    rng = np.random.default_rng([cfg.seed, 1_000_003])
    nc, nd = spend_counts.shape
    low = np.array([c.rate_low for c in CHANNELS])[:, None]
    high = np.array([c.rate_high for c in CHANNELS])[:, None]
    rate = low + (high - low) * rng.random((nc, nd))
    exposures = np.rint(spend_counts / rate).astype(np.int64)
    cost = np.array([c.cost_per_exposure for c in CHANNELS])[:, None] * rng.uniform(0.9, 1.1, (nc, nd))
    fixed = np.array([c.daily_fixed for c in CHANNELS])[:, None]
    spend_cents = np.rint((exposures * cost + fixed) * 100).astype(np.int64)
    ch, day = np.meshgrid(np.arange(nc), np.arange(nd), indexing="ij")
    start_days = (cfg.start - date(1970, 1, 1)).days
    table = pa.table(
        {
            "brand_id": _const(cfg.brand_id, nc * nd),
            "channel_id": pick([c.channel_id for c in CHANNELS], ch.ravel()),
            "day": pa.array((start_days + day.ravel()).astype(np.int32), pa.date32()),
            "spend_cents": pa.array(spend_cents.ravel()),
            "exposures": pa.array(exposures.ravel()),
        }
    )
    return insert(
        cur,
        "channel_spend",
        table,
        select="brand_id, channel_id, day, CAST(spend_cents AS DECIMAL(18, 2)) / 100, exposures",
    )
