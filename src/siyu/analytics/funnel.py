"""WeCom funnel (引流成功率, 服务成功率, 变现成功率) and early-stage KPIs (加粉率, 删粉率, 互动率).

Cohorts are taken in the period [S, E); the follow-up windows may run past E (recent cohorts are not complete
until their window has passed).

- 引流成功率 lead-in success = invited customers who added a guide within ``lead_in_days`` (default 3) of their
  first lead-in touch of the period / customers who received a lead-in touch in the period (``Touch
  Delivered`` with ``properties.purpose`` in ``lead_in_purposes``, default ``lead_in``);
- 服务成功率 service success = contacts (relations) added in the period whose customer had a service interaction
  (``service_events``, default ``Message Replied``, with ``properties.purpose`` in ``service_purposes``, default
  ``service``; None = any) within ``service_days`` (7) from the add / contacts added;
- 变现成功率 monetization success = contacts added in the period whose customer placed a revenue order within
  ``monetization_days`` (30) from the add (the add instant included) / contacts added;
- 加粉率 add rate = contacts added in the period through a channel / that channel's exposures on the period's
  days (``channel_spend.exposures``);
- 删粉率 loss rate = contacts lost in the period with ``lost_by`` in ``loss_lost_by`` (default ``customer``:
  the customer deleted the guide) / contacts active at S;
- 互动率 interaction rate = customers reachable in the period (held at some instant of it) with ≥ 1 inbound
  interaction (``interaction_events``, default ``Message Replied``, ``Message Clicked``) in the period /
  customers reachable in the period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import ibis
import ibis.expr.types as ir

from siyu.analytics.base import Tables, customer_events, customer_orders, customer_relations, ts
from siyu.analytics.definitions import define
from siyu.analytics.performance import TOUCH_DELIVERED
from siyu.domain.brand_time import local_day

MODULE = "funnel"

# the seeds' typical ranges (shared/reference/domain.md), drawn as reference bands
BANDS: dict[str, tuple[float, float]] = {
    "lead_in_rate": (0.65, 0.75),  # "typical ~70% with a real business scene"
    "service_rate": (0.40, 0.50),  # "typically 40-50%"
    "monetization_rate": (0.10, 0.20),  # "10-20%" (good operators 30-40%: MONETIZATION_GOOD)
}
MONETIZATION_GOOD: tuple[float, float] = (0.30, 0.40)
ADD_RATE_BANDS: dict[str, tuple[float, float]] = {  # by channels.kind
    "parcel_card": (0.24, 0.34),  # parcel cards 24-34% at < ¥3 per contact
    "ai_call_sms": (0.23, 0.27),  # AI outbound call + SMS about 25% at < ¥2
}

for _key, _zh, _en, _fzh, _fen in (
    (
        "funnel.lead_in_rate",
        "引流成功率",
        "lead-in success",
        "期内收到引流触达（Touch Delivered, purpose=lead_in）的客户中，首次触达后 3 天内添加导购的人数"
        " / 收到引流触达的人数",
        "customers who added a guide within 3 days of their first lead-in touch (Touch Delivered, purpose "
        "lead_in) in the period / customers who received a lead-in touch",
    ),
    (
        "funnel.service_rate",
        "服务成功率",
        "service success",
        "期内新增好友中，添加后 7 天内有服务互动（Message Replied, purpose=service）的好友数 / 新增好友数",
        "contacts added in the period with a service interaction (Message Replied, purpose service) within 7 "
        "days of the add / contacts added",
    ),
    (
        "funnel.monetization_rate",
        "变现成功率",
        "monetization success",
        "期内新增好友中，添加后 30 天内（含添加时刻）有有效订单的好友数 / 新增好友数",
        "contacts added in the period whose customer placed a revenue order within 30 days of the add (add "
        "instant included) / contacts added",
    ),
    (
        "kpi.add_rate",
        "加粉率",
        "add rate",
        "期内经该渠道新增的好友数 / 该渠道期内曝光量（channel_spend.exposures）",
        "contacts added through the channel in the period / the channel's exposures (channel_spend.exposures)",
    ),
    (
        "kpi.loss_rate",
        "删粉率",
        "loss rate",
        "期内被客户删除（删粉，lost_by=customer）的好友关系数 / 期初有效好友关系数",
        "contacts lost in the period because the customer deleted the guide (lost_by customer) / contacts "
        "active at the start",
    ),
    (
        "kpi.interaction_rate",
        "互动率",
        "interaction rate",
        "期内可触达客户中至少有 1 次主动互动（回复、点击）的人数 / 期内可触达客户数",
        "customers reachable in the period with ≥ 1 inbound interaction (reply, click) in it / customers "
        "reachable in the period",
    ),
):
    define(_key, _zh, _en, _fzh, _fen, "ratio", MODULE)


@dataclass(frozen=True)
class FunnelConfig:
    """Event sets and windows of the funnel and the KPIs."""

    lead_in_purposes: tuple[str, ...] = ("lead_in",)
    lead_in_days: int = 3
    service_events: tuple[str, ...] = ("Message Replied",)
    service_purposes: tuple[str, ...] | None = ("service",)
    service_days: int = 7
    monetization_days: int = 30
    interaction_events: tuple[str, ...] = ("Message Replied", "Message Clicked")
    loss_lost_by: tuple[str, ...] = ("customer",)

    def __post_init__(self) -> None:
        for name in ("lead_in_days", "service_days", "monetization_days"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be a positive number of days")


def _in(col: ir.TimestampColumn, start: datetime, end: datetime) -> ir.BooleanColumn:
    return (col >= ts(start)) & (col < ts(end))


def lead_in(t: Tables, start: datetime, end: datetime, cfg: FunnelConfig | None = None) -> ir.Table:
    """Customers invited in [start, end). Columns: customer_id, channel_id (of the first invitation),
    invited_at (first invitation), led_in (added a guide within the window)."""
    cfg = cfg or FunnelConfig()
    ev = customer_events(t)
    inv = ev.filter(
        (ev.event == TOUCH_DELIVERED)
        & ev.properties["purpose"].str.isin(cfg.lead_in_purposes)
        & _in(ev.timestamp, start, end)
    )
    first = inv.group_by("customer_id").agg(
        invited_at=inv.timestamp.min(), channel_id=inv.properties["channel_id"].str.argmin(inv.timestamp)
    )
    r = customer_relations(t)
    r = r.select(r_cid=r.customer_id, r_at=r.added_at)
    window = ibis.interval(days=cfg.lead_in_days)
    hit = (
        first.join(
            r,
            (first.customer_id == r.r_cid) & (r.r_at >= first.invited_at) & (r.r_at < first.invited_at + window),
        )
        .select(h_cid=first.customer_id)
        .distinct()
    )
    x = first.left_join(hit, first.customer_id == hit.h_cid)
    return x.select(
        customer_id=x.customer_id,
        channel_id=x.channel_id.fill_null("(none)"),
        invited_at=x.invited_at,
        led_in=x.h_cid.notnull(),
    )


def contacts(t: Tables, start: datetime, end: datetime, cfg: FunnelConfig | None = None) -> ir.Table:
    """Contacts (relations) added in [start, end) with their follow-ups. Columns: customer_id, external_userid,
    guide_id, store_id, channel_id, added_at, served, bought."""
    cfg = cfg or FunnelConfig()
    r = customer_relations(t)
    r = r.filter(_in(r.added_at, start, end))
    ev = customer_events(t)
    cond = ev.event.isin(cfg.service_events)
    if cfg.service_purposes is not None:
        cond &= ev.properties["purpose"].str.isin(cfg.service_purposes)
    svc = ev.filter(cond).select(s_cid=ev.customer_id, s_at=ev.timestamp)
    sw = ibis.interval(days=cfg.service_days)
    v = r.view()  # the follow-ups are joined back to r: a self-join needs its own reference
    served = (
        v.join(svc, (v.customer_id == svc.s_cid) & (svc.s_at >= v.added_at) & (svc.s_at < v.added_at + sw))
        .select(sv_euid=v.external_userid, sv_guide=v.guide_id)
        .distinct()
    )
    o = customer_orders(t)
    o = o.select(o_cid=o.customer_id, o_at=o.ordered_at)
    mw = ibis.interval(days=cfg.monetization_days)
    w = r.view()
    bought = (
        w.join(o, (w.customer_id == o.o_cid) & (o.o_at >= w.added_at) & (o.o_at < w.added_at + mw))
        .select(b_euid=w.external_userid, b_guide=w.guide_id)
        .distinct()
    )
    x = r.left_join(served, (r.external_userid == served.sv_euid) & (r.guide_id == served.sv_guide))
    x = x.left_join(bought, (x.external_userid == bought.b_euid) & (x.guide_id == bought.b_guide))
    return x.select(
        customer_id=x.customer_id,
        external_userid=x.external_userid,
        guide_id=x.guide_id,
        store_id=x.store_id,
        channel_id=x.channel_id.fill_null("(none)"),
        added_at=x.added_at,
        served=x.sv_euid.notnull(),
        bought=x.b_euid.notnull(),
    )


def count_lead_in(li: ir.Table, unit: ir.Value | str) -> ir.Table:
    """Invited and led-in customers per unit (a column name of ``li`` or a literal). Columns: unit, invited,
    led_in."""
    x = li.mutate(unit=li[unit] if isinstance(unit, str) else unit)
    return x.group_by("unit").agg(invited=x.count(), led_in=x.led_in.cast("int64").sum())


def count_contacts(c: ir.Table, unit: ir.Value | str) -> ir.Table:
    """Added, served and bought contacts per unit. Columns: unit, added, served, bought."""
    x = c.mutate(unit=c[unit] if isinstance(unit, str) else unit)
    return x.group_by("unit").agg(
        added=x.count(), served=x.served.cast("int64").sum(), bought=x.bought.cast("int64").sum()
    )


def exposures(t: Tables, start: datetime, end: datetime) -> ir.Table:
    """Exposures per channel on the brand days of [start, end) (instants opening local days). Columns:
    channel_id, exposures."""
    s = t.channel_spend
    s = s.filter((s.day >= local_day(start)) & (s.day < local_day(end)))
    return s.group_by("channel_id").agg(exposures=s.exposures.sum().cast("int64"))


def relations_at(t: Tables, at: datetime) -> ir.Table:
    """Contacts (relations) active at instant ``at`` (customer-level, with guide and store)."""
    r = customer_relations(t)
    return r.filter((r.added_at <= ts(at)) & (r.lost_at.isnull() | (r.lost_at > ts(at))))


def lost_in(t: Tables, start: datetime, end: datetime, cfg: FunnelConfig | None = None) -> ir.Table:
    """Contacts lost in (start, end] with ``lost_by`` in ``cfg.loss_lost_by``."""
    cfg = cfg or FunnelConfig()
    r = customer_relations(t)
    return r.filter((r.lost_at > ts(start)) & (r.lost_at <= ts(end)) & r.lost_by.isin(cfg.loss_lost_by))


def interacted(t: Tables, start: datetime, end: datetime, cfg: FunnelConfig | None = None) -> ir.Table:
    """Distinct customer_id with an inbound interaction in [start, end)."""
    cfg = cfg or FunnelConfig()
    ev = customer_events(t)
    return (
        ev.filter(ev.event.isin(cfg.interaction_events) & _in(ev.timestamp, start, end))
        .select("customer_id")
        .distinct()
    )
