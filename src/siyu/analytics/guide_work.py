"""Guide scorecard figures beyond the leaderboard of ``siyu.analytics.guides`` (Ibis expressions, never executed
here): losses and reply time, per guide, over a period of brand-local days.

* losses (流失): distinct customers whose relation with the guide was lost (``relations.lost_at``) in the period,
  whoever deleted whom (``lost_by`` tells which side).
* reply time (首次响应时长): for each relation added in the period, the minutes from the add to the first
  ``Message Replied`` event with ``properties.purpose = 'service'`` and ``properties.guide_id`` = the guide within
  ``REPLY_WINDOW_DAYS`` of the add (the guide's first service reply, as the WeCom / chat-archive ingest records
  it); per guide the median over the relations that got one, and ``replied_share`` = those relations / relations
  added. Guides without such events show no reply time (not zero).
"""

from __future__ import annotations

from datetime import date

import ibis
import ibis.expr.types as ir

from siyu.analytics.base import Tables, customer_events, customer_relations, in_days
from siyu.analytics.definitions import define

MODULE = "guide_work"
REPLY_EVENT = "Message Replied"
REPLY_PURPOSE = "service"
REPLY_WINDOW_DAYS = 7


def guide_losses(t: Tables, start: date, end: date) -> ir.Table:
    """``guide_id, losses``: distinct customers whose relation with the guide was lost in the period."""
    r = customer_relations(t)
    r = r.filter(r.lost_at.notnull() & in_days(r.lost_at, start, end))
    return r.group_by("guide_id").agg(losses=r.customer_id.nunique())


def guide_replies(t: Tables, start: date, end: date) -> ir.Table:
    """``guide_id, added, replied, reply_minutes`` (median minutes to the first service reply)."""
    r = customer_relations(t)
    r = r.filter(in_days(r.added_at, start, end)).select("customer_id", "guide_id", "added_at")
    e = customer_events(t)
    e = e.filter((e.event == REPLY_EVENT) & (e.properties["purpose"].str == REPLY_PURPOSE))
    e = e.select(e_customer=e.customer_id, e_guide=e.properties["guide_id"].str, at=e.timestamp)
    j = r.left_join(
        e,
        (r.customer_id == e.e_customer)
        & (r.guide_id == e.e_guide)
        & (e.at >= r.added_at)
        & (e.at < r.added_at + ibis.interval(days=REPLY_WINDOW_DAYS)),
    )
    first = j.group_by([j.customer_id, j.guide_id, j.added_at]).agg(first_at=j.at.min())
    minutes = (first.first_at.epoch_seconds() - first.added_at.epoch_seconds()) / 60.0
    first = first.mutate(minutes=minutes)
    return first.group_by("guide_id").agg(
        added=first.count(),
        replied=first.first_at.notnull().sum(),
        reply_minutes=first.minutes.median(),
    )


define(
    "guides.losses",
    "流失客户",
    "Losses",
    "期间内与该导购的好友关系被删除（lost_at 在期内，任一方删除）的去重客户数",
    "Distinct customers whose relation with the guide was lost in the period (either side deleted)",
    "count",
    MODULE,
)
define(
    "guides.reply_minutes",
    "首次响应时长（分钟）",
    "Reply time (minutes)",
    "期内新增好友中，从添加到导购首次服务回复（Message Replied，purpose=service，7 天内）的分钟数中位数",
    "Median minutes from the add to the guide's first service reply (Message Replied, purpose service, within "
    "7 days) over the contacts added in the period that got one",
    "count",
    MODULE,
)
define(
    "guides.tasks_on_time",
    "按时完成任务",
    "Tasks done on time",
    "期间内分配给该导购的旅程任务中，在截止时间前完成的任务数",
    "Journey tasks assigned to the guide in the period and done by their due time",
    "count",
    MODULE,
)
define(
    "guides.moments_done",
    "朋友圈完成",
    "Moments done",
    "期间内发布给该导购的朋友圈任务中，导购已发表（企业微信 publish_status=1）的任务数",
    "Moments tasks published to the guide in the period that the guide has posted (WeCom publish_status 1)",
    "count",
    MODULE,
)
