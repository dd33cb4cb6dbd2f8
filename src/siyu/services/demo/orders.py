"""Orders and order lines of the demo brand (Poisson–Gamma repeat buying with drop-out, BTYD-like)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from siyu.services.demo.config import PRODUCTS, DemoConfig
from siyu.services.demo.people import MARKETPLACE, STORE_CHANNEL, People, channel_index
from siyu.services.demo.text import IntArray, daytime_seconds, dec, join

DAY = 86_400
MONETIZATION_WINDOW_DAYS = 30
MAX_ORDERS = 200  # per customer
SALES_CHANNELS = ("ch_tmall", "ch_jd", "ch_store", "")  # "" = the brand's own mini-program (private domain)
SALES_WEIGHTS = np.array([0.35, 0.15, 0.25, 0.25])
PRICES_CENTS = np.array([round(p[2] * 100) for p in PRODUCTS], dtype=np.int64)
DISCOUNTS = np.array([100, 95, 90, 80])  # percent of list price


@dataclass
class Orders:
    """Orders (aligned arrays) and their lines."""

    cust: IntArray  # position in the People chunk
    at_s: IntArray
    rank: IntArray  # 0 = the customer's first order in the data
    sales: IntArray  # index into SALES_CHANNELS
    refunded: np.ndarray
    amount_cents: IntArray
    line_order: IntArray  # order position of each line
    line_no: IntArray
    line_product: IntArray
    line_qty: IntArray
    line_unit_cents: IntArray  # unit price in 1/100 yuan
    line_amount_cents: IntArray


def generate_orders(cfg: DemoConfig, people: People, added: np.ndarray, added_s: IntArray, chunk: int) -> Orders:
    """Orders for one chunk; an added contact orders within 30 days of the add with ``rates.monetization``."""
    rng = np.random.default_rng([cfg.seed, chunk, 3])
    r = cfg.rates
    n, end = len(people), cfg.seconds
    buyer = rng.random(n) < r.buyers
    monetised = added & (rng.random(n) < r.monetization)
    # Marketplace and store customers are acquired by their first purchase; others buy a while later.
    bought_at_acq = MARKETPLACE[people.channel] | (people.channel == STORE_CHANNEL)
    first_s = np.where(bought_at_acq, people.acq_s, people.acq_s + rng.exponential(20 * DAY, n).astype(np.int64))
    buyer &= first_s < end
    buyer |= bought_at_acq  # acquired by a purchase
    span = np.minimum(end - first_s, rng.exponential(360 * DAY, n).astype(np.int64)).clip(0)
    heat = rng.gamma(0.7, 1 / 0.7, size=n)
    extra = max(n * r.orders_per_customer - buyer.sum() - monetised.sum(), 0)
    weight = np.where(buyer, heat * span, 0.0)
    scale = extra / weight.sum() if weight.sum() > 0 else 0.0
    repeats = np.minimum(rng.poisson(weight * scale), MAX_ORDERS - 2)
    counts = buyer.astype(np.int64) + repeats * buyer + monetised
    cust = np.repeat(np.arange(n), counts)
    start = np.cumsum(counts) - counts
    k = np.arange(len(cust)) - start[cust]  # position within the customer's orders
    # k == 0 → first order (buyers); the monetised order is the last slot; the rest are repeats.
    is_first = buyer[cust] & (k == 0)
    is_monetised = monetised[cust] & (k == counts[cust] - 1)
    at = first_s[cust] + (rng.random(len(cust)) * span[cust]).astype(np.int64)
    at = np.where(is_first, first_s[cust], at)
    mon_at = added_s[cust] + rng.integers(60, MONETIZATION_WINDOW_DAYS * DAY, size=len(cust))
    at = np.where(is_monetised, np.minimum(mon_at, end - 1), at)
    # Snap repeat orders to shopping hours of their day.
    day_start = at // DAY * DAY
    at = np.where(is_first | is_monetised, at, day_start + daytime_seconds(rng, len(at)))
    # Contacts who were not monetised do not buy within the 30 days after the add: those orders move later.
    a_s = added_s[cust]
    inside = added[cust] & ~monetised[cust] & (at >= a_s) & (at < a_s + MONETIZATION_WINDOW_DAYS * DAY)
    at = np.where(inside, at + MONETIZATION_WINDOW_DAYS * DAY, at)
    keep = at < end
    cust, at = cust[keep], at[keep]
    order = np.lexsort((at, cust))
    cust, at = cust[order], at[order]
    counts = np.bincount(cust, minlength=n)
    rank = np.arange(len(cust)) - (np.cumsum(counts) - counts)[cust]

    sales = rng.choice(len(SALES_CHANNELS), size=len(cust), p=SALES_WEIGHTS)
    first_channel = np.select(
        [people.channel == channel_index("ch_tmall"), people.channel == channel_index("ch_jd")], [0, 1], 2
    )
    sales = np.where((rank == 0) & bought_at_acq[cust], first_channel[cust], sales)

    n_orders = len(cust)
    n_lines = np.minimum(1 + rng.poisson(0.6, size=n_orders), 4)
    line_order = np.repeat(np.arange(n_orders), n_lines)
    line_no = np.arange(len(line_order)) - (np.cumsum(n_lines) - n_lines)[line_order] + 1
    popularity = np.array([p[3] for p in PRODUCTS])
    product = rng.choice(len(PRODUCTS), size=len(line_order), p=popularity / popularity.sum())
    qty = rng.choice([1, 2, 3], size=len(line_order), p=[0.84, 0.13, 0.03])
    unit = PRICES_CENTS[product] * rng.choice(DISCOUNTS, size=len(line_order), p=[0.6, 0.15, 0.15, 0.1]) // 100
    line_amount = unit * qty
    amount = np.bincount(line_order, weights=line_amount, minlength=n_orders).astype(np.int64)
    return Orders(
        cust=cust,
        at_s=at,
        rank=rank,
        sales=sales,
        refunded=rng.random(n_orders) < r.refunded,
        amount_cents=amount,
        line_order=line_order,
        line_no=line_no,
        line_product=product,
        line_qty=qty,
        line_unit_cents=unit,
        line_amount_cents=line_amount,
    )


def order_ids(people: People, orders: Orders) -> pa.Array:
    """Deterministic order numbers: LY + customer number + the order's rank for that customer."""
    return join("LY", dec(people.idx[orders.cust], 9), dec(orders.rank, 3))
