"""Segment-shaped events of the demo brand with deterministic message ids.

Lead-in invitations and broadcasts are ``Touch Delivered``; customers answer with ``Message Clicked``,
``Message Replied`` and ``Coupon Claimed``; the mini-program records ``page`` views and ``Product Viewed``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from siyu.services.demo.config import CHANNELS, PRODUCTS, DemoConfig
from siyu.services.demo.people import People
from siyu.services.demo.text import IntArray, dec, join, nullify, pick, take, timestamps
from siyu.services.demo.wecom import Wecom

DAY = 86_400
TOUCH_DELIVERED = "Touch Delivered"
MESSAGE_CLICKED = "Message Clicked"
MESSAGE_REPLIED = "Message Replied"
COUPON_CLAIMED = "Coupon Claimed"
PRODUCT_VIEWED = "Product Viewed"
PAGES = ("首页", "会员中心", "活动页", "商品列表")
CONTEXT = '{"library":{"name":"siyu-demo","version":"1"}}'
EVENT_COLUMNS = ("message_id", "type", "event", "name", "user_id", "anonymous_id", "properties", "timestamp")


def guide_ids(guide: npt.NDArray[np.integer]) -> pa.Array:
    return join("g", dec(np.asarray(guide) + 1, 2))


def invite_ids(people: People) -> pa.Array:
    """message_id of each customer's lead-in invitation; also the ``state`` of the channel code they scan."""
    return join("demo-inv-", dec(people.idx, 9))


class _Batch:
    """Collects event columns from several generators and concatenates them once."""

    def __init__(self, cfg: DemoConfig) -> None:
        self.cfg = cfg
        self.parts: list[pa.Table] = []

    def add(
        self,
        message_id: pa.Array,
        at_s: IntArray,
        user_id: pa.Array,
        properties: pa.Array,
        event: str | None = None,
        name: pa.Array | None = None,
        anonymous_id: pa.Array | None = None,
    ) -> None:
        n = len(message_id)
        if n == 0:
            return
        self.parts.append(
            pa.table(
                {
                    "message_id": message_id,
                    "type": pa.repeat(pa.scalar("track" if event else "page"), n),
                    "event": pa.repeat(pa.scalar(event, pa.string()), n),
                    "name": name if name is not None else pa.nulls(n, pa.string()),
                    "user_id": user_id,
                    "anonymous_id": anonymous_id if anonymous_id is not None else pa.nulls(n, pa.string()),
                    "properties": properties,
                    "timestamp": timestamps(self.cfg.start_at, at_s),
                }
            )
        )

    def table(self) -> pa.Table:
        if not self.parts:
            return pa.table({c: pa.array([], pa.string()) for c in EVENT_COLUMNS})
        return pa.concat_tables(self.parts)


def generate_events(cfg: DemoConfig, people: People, wc: Wecom, chunk: int) -> pa.Table:
    """All events of one chunk as an Arrow table with the columns in EVENT_COLUMNS."""
    rng = np.random.default_rng([cfg.seed, chunk, 4])
    r, end, out = cfg.rates, cfg.seconds, _Batch(cfg)
    channel_ids = pa.array([c.channel_id for c in CHANNELS])

    # Lead-in invitations (SMS with the channel code).
    i = np.flatnonzero(wc.invited)
    out.add(
        take(invite_ids(people), i),
        wc.invite_s[i],
        take(people.user_id, i),
        join('{"touchpoint_id":"tp_sms","purpose":"lead_in","channel_id":"', take(channel_ids, wc.channel[i]), '"}'),
        TOUCH_DELIVERED,
    )
    wecom_props = join(
        '{"touchpoint_id":"tp_wecom_',
        guide_ids(wc.guide),
        '","guide_id":"',
        guide_ids(wc.guide),
        '","external_userid":"',
        wc.external_userid,
        '"',
    )
    # Service replies right after the add (服务成功).
    i = np.flatnonzero(wc.replied)
    out.add(
        join("demo-svc-", dec(people.idx[i], 9)),
        wc.reply_s[i],
        take(people.user_id, i),
        join(take(wecom_props, i), ',"purpose":"service"}'),
        MESSAGE_REPLIED,
    )
    # Broadcasts (群发) to active contacts, from a week after the add until the loss.
    first = wc.added_s + 7 * DAY
    span = np.where(wc.added, np.clip(wc.lost_s - first, 0, None), 0)
    counts = rng.poisson(span / (r.broadcast_every_days * DAY))
    cust = np.repeat(np.arange(len(people)), counts)
    k = np.arange(len(cust)) - (np.cumsum(counts) - counts)[cust]
    at = first[cust] + (rng.random(len(cust)) * span[cust]).astype(np.int64)
    at = at // DAY * DAY + 10 * 3600 + rng.integers(0, 10 * 3600, len(cust))  # sent 10:00–20:00
    at = np.minimum(at, wc.lost_s[cust] - 1)
    month = (at // (30 * DAY)).astype(np.int64)
    base_ids = join("demo-bc-", dec(people.idx[cust], 9), "-", dec(k, 3))
    props = join(take(wecom_props, cust), ',"purpose":"broadcast","campaign_id":"cmp_', dec(month, 2), '"}')
    users = take(people.user_id, cust)
    out.add(base_ids, at, users, props, TOUCH_DELIVERED)
    clicked = rng.random(len(cust)) < r.click
    click_at = at + rng.integers(60, 2 * 3600, len(cust))
    c = np.flatnonzero(clicked & (click_at < end))
    out.add(join(take(base_ids, c), "-c"), click_at[c], take(users, c), take(props, c), MESSAGE_CLICKED)
    reply_at = at + rng.integers(120, 6 * 3600, len(cust))
    c = np.flatnonzero((rng.random(len(cust)) < r.reply) & (reply_at < np.minimum(end, wc.lost_s[cust])))
    out.add(join(take(base_ids, c), "-r"), reply_at[c], take(users, c), take(props, c), MESSAGE_REPLIED)
    coupon_at = click_at + rng.integers(10, 600, len(cust))
    c = np.flatnonzero(clicked & (rng.random(len(cust)) < r.coupon) & (coupon_at < end))
    coupon_props = join('{"coupon_id":"cp_', dec(month[c], 2), '","campaign_id":"cmp_', dec(month[c], 2), '"}')
    out.add(join(take(base_ids, c), "-q"), coupon_at[c], take(users, c), coupon_props, COUPON_CLAIMED)

    # Mini-program page and product views; before logging in a visitor is known by the anonymous id only.
    counts = rng.poisson(r.page_views, size=len(people))
    cust = np.repeat(np.arange(len(people)), counts)
    k = np.arange(len(cust)) - (np.cumsum(counts) - counts)[cust]
    at = people.acq_s[cust] + (rng.random(len(cust)) * (end - people.acq_s[cust])).astype(np.int64)
    ids = join("demo-pv-", dec(people.idx[cust], 9), "-", dec(k, 3))
    anon = take(people.anonymous_id, cust)
    logged_out = people.has_anon[cust] & (rng.random(len(cust)) < 0.5)
    users = nullify(take(people.user_id, cust), ~logged_out)
    product = rng.random(len(cust)) < 0.45
    p = np.flatnonzero(product)
    sku = rng.integers(0, len(PRODUCTS), len(p))
    prod_props = join(
        '{"touchpoint_id":"tp_mp","sku":"',
        pick([x[0] for x in PRODUCTS], sku),
        '","price":',
        pick([f"{x[2]:.2f}" for x in PRODUCTS], sku),
        "}",
    )
    out.add(take(ids, p), at[p], take(users, p), prod_props, PRODUCT_VIEWED, anonymous_id=take(anon, p))
    p = np.flatnonzero(~product)
    page = pick(PAGES, rng.integers(0, len(PAGES), len(p)))
    page_props = join('{"touchpoint_id":"tp_mp","title":"', page, '"}')
    out.add(take(ids, p), at[p], take(users, p), page_props, name=page, anonymous_id=take(anon, p))
    return out.table()
