"""Self-check of a seeded demo brand: the funnel rates the generator aims at, recomputed from the tables
with Ibis (used by the tests and by ``siyu demo check``). These are sanity checks of the generator, not the
product's metric definitions (those live with the metrics area)."""

from __future__ import annotations

from datetime import datetime

import ibis

from siyu.domain.brand_time import day_end_utc
from siyu.services.context import Context
from siyu.services.demo.config import CHANNELS
from siyu.services.demo.events import MESSAGE_REPLIED, TOUCH_DELIVERED
from siyu.services.demo.orders import MONETIZATION_WINDOW_DAYS
from siyu.services.demo.wecom import LEAD_IN_WINDOW_DAYS, SERVICE_WINDOW_DAYS
from siyu.services.errors import NotFound

LEAD_IN_CHANNELS = tuple(c.channel_id for c in CHANNELS if c.kind.value != "marketplace")


def _window_end(ctx: Context, brand_id: str) -> datetime:
    s = ctx.warehouse.table("channel_spend")
    last = s.filter(s.brand_id == brand_id).day.max().to_pyarrow().as_py()
    if last is None:
        raise NotFound(f"brand {brand_id!r} has no demo data; run `siyu demo seed --brand {brand_id}`")
    return day_end_utc(last)


def demo_rates(ctx: Context, brand_id: str) -> dict[str, float | None]:
    """Add rate per lead-in channel, lead-in / service / monetization success and the monthly loss rate.

    monetization is None until OneID has filled ``identities`` (orders and contacts meet through it).
    """
    wh = ctx.warehouse
    end = _window_end(ctx, brand_id)
    rel = wh.table("relations")
    rel = rel.filter(rel.brand_id == brand_id)
    spend = wh.table("channel_spend")
    spend = spend.filter(spend.brand_id == brand_id)
    ev = wh.table("events")
    ev = ev.filter(ev.brand_id == brand_id)
    out: dict[str, float | None] = {}

    adds = rel.group_by("channel_id").agg(adds=rel.count())
    exposures = spend.group_by("channel_id").agg(exposures=spend.exposures.sum())
    per_channel = adds.join(exposures, "channel_id").execute()
    for row in per_channel.itertuples():
        if row.channel_id in LEAD_IN_CHANNELS and row.exposures:
            out[f"add_rate.{row.channel_id}"] = float(row.adds / row.exposures)

    n_rel = int(rel.count().execute())
    invites = ev.filter((ev.event == TOUCH_DELIVERED) & (ev.properties["purpose"].str == "lead_in"))
    led_in = invites.join(rel, invites.message_id == rel.source_ref).filter(
        lambda t: t.added_at < t.timestamp + ibis.interval(days=LEAD_IN_WINDOW_DAYS)
    )
    n_inv = int(invites.count().execute())
    out["lead_in_success"] = int(led_in.count().execute()) / n_inv if n_inv else None

    replies = ev.filter((ev.event == MESSAGE_REPLIED) & (ev.properties["purpose"].str == "service"))
    replies = replies.select(euid=replies.properties["external_userid"].str, replied_at=replies.timestamp)
    served = rel.join(replies, rel.external_userid == replies.euid).filter(
        lambda t: (t.replied_at >= t.added_at) & (t.replied_at < t.added_at + ibis.interval(days=SERVICE_WINDOW_DAYS))
    )
    out["service_success"] = int(served.external_userid.nunique().execute()) / n_rel if n_rel else None

    ids = wh.table("identities")
    ids = ids.filter(ids.brand_id == brand_id)
    if n_rel and int(ids.count().execute()):
        contact = ids.filter(ids.id_type == "external_userid").select(euid="id_value", cid="customer_id")
        rel_c = rel.join(contact, rel.external_userid == contact.euid)
        orders = wh.table("orders")
        orders = orders.filter(orders.brand_id == brand_id)
        oc = orders.join(ids, (orders.customer_ref_type == ids.id_type) & (orders.customer_ref == ids.id_value)).select(
            ocid="customer_id", ordered_at="ordered_at"
        )
        window = ibis.interval(days=MONETIZATION_WINDOW_DAYS)
        bought = rel_c.join(oc, rel_c.cid == oc.ocid).filter(
            lambda t: (t.ordered_at >= t.added_at) & (t.ordered_at < t.added_at + window)
        )
        out["monetization"] = int(bought.external_userid.nunique().execute()) / n_rel
    else:
        out["monetization"] = None

    alive = rel.mutate(
        months=(rel.lost_at.fill_null(ibis.literal(end)).epoch_seconds() - rel.added_at.epoch_seconds()) / (30 * 86_400)
    )
    exposure_months = float(alive.months.sum().execute() or 0)
    n_lost = int(rel.filter(rel.state == "lost").count().execute())
    out["monthly_loss"] = n_lost / exposure_months if exposure_months else None
    return out
