"""联系客户统计 — ``get_user_behavior_data`` as WeCom documents it (客户联系 → 统计管理 → 获取「联系客户统计」数据,
doc path/92132): ``userid`` (≤ 100) and/or ``partyid`` (≤ 100; this server has one department, 1 = every member),
not both empty; ``start_time``/``end_time`` Unix times floored to 0:00 (China time), an inclusive day range of at
most 30 days, no day older than 180 days; one row per day of the range. Several members answer their TOTAL
(counts summed, reply share and average first reply time over all their chats), which is why callers ask per
member. ``reply_percentage`` is present only when customers started chats, ``avg_reply_time`` (minutes) only when
the member replied to one.

Tests put raw figures in with ``record`` (per member and day): chats, messages, customer-started chats, of which
replied, their total first-reply minutes, deletions/blocks, friend requests, new contacts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.wecom_server.codes import WeComErr, need
from tests.wecom_server.params import items

if TYPE_CHECKING:
    from tests.wecom_server.server import WeComServer

DAY = 86400
CN = 8 * 3600  # China time, UTC+8
MAX_SPAN_DAYS = 30
MAX_AGE_DAYS = 180
FIELDS = ("chats", "messages", "started", "replied", "reply_minutes", "negative", "applies", "new_contacts")


def floor_day(t: int) -> int:
    """The China-time midnight at or before ``t`` (Unix seconds)."""
    return (t + CN) // DAY * DAY - CN


def record(srv: WeComServer, userid: str, at: float, **counts: float) -> None:
    """Add raw figures (names in ``FIELDS``) to a member's day (the day of ``at``, China time)."""
    bad = set(counts) - set(FIELDS)
    if bad:
        raise ValueError(f"unknown behavior fields {sorted(bad)}")
    with srv.lock:
        day = srv.company.behavior.setdefault((userid, floor_day(int(at))), dict.fromkeys(FIELDS, 0.0))
        for k, v in counts.items():
            day[k] += v


def _time(q: dict[str, Any], name: str) -> int:
    v = q.get(name)
    need(v not in (None, ""), 40058, f"{name} missing")
    try:
        return int(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise WeComErr(40058, f"{name} must be a Unix time") from None


def get_user_behavior_data(srv: WeComServer, q: dict[str, Any]) -> dict[str, Any]:
    users = [str(u) for u in items(q, "userid", 100)]
    parties = items(q, "partyid", 100)
    need(bool(users or parties), 40058, "userid and partyid cannot both be empty")
    for u in users:
        need(u in srv.company.members, 60111, u)
    for p in parties:
        need(str(p) == "1", 60123, str(p))
    if parties:
        users = sorted(set(users) | set(srv.company.members))
    start, end = floor_day(_time(q, "start_time")), floor_day(_time(q, "end_time"))
    need(end >= start, 40058, "end_time is before start_time")
    need((end - start) // DAY + 1 <= MAX_SPAN_DAYS, 40058, f"the range spans more than {MAX_SPAN_DAYS} days")
    today = floor_day(int(srv.now()))
    need(start >= today - MAX_AGE_DAYS * DAY, 40058, f"start_time is more than {MAX_AGE_DAYS} days ago")
    srv.company.behavior_calls.append({"userid": list(users), "partyid": list(parties), "start": start, "end": end})
    out = []
    for day in range(start, end + 1, DAY):
        tot = dict.fromkeys(FIELDS, 0.0)
        for u in users:
            for k, v in srv.company.behavior.get((u, day), {}).items():
                tot[k] += v
        row: dict[str, Any] = {
            "stat_time": day,
            "chat_cnt": int(tot["chats"]),
            "message_cnt": int(tot["messages"]),
            "negative_feedback_cnt": int(tot["negative"]),
            "new_apply_cnt": int(tot["applies"]),
            "new_contact_cnt": int(tot["new_contacts"]),
        }
        if tot["started"]:
            row["reply_percentage"] = round(tot["replied"] * 100.0 / tot["started"], 2)
        if tot["replied"]:
            row["avg_reply_time"] = round(tot["reply_minutes"] / tot["replied"])
        out.append(row)
    return {"behavior_data": out}
