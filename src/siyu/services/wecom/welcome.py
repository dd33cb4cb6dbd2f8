"""Welcome message + gift (欢迎语/见面礼) of a channel code, sent through ``send_welcome_msg`` with the add event's
WelcomeCode.

WeCom accepts a welcome code within 20 s of the add (from the event's CreateTime) and only once.  Each add's
welcome is claimed on its onboarding row (keyed by the callback), so it is sent at most once: a row already
final is never sent again; a row left ``sending`` by a crash is tried again and WeCom's 41051 (already delivered)
then records it as delivered.  41051 is final, 41050 means the window passed, 41096 (another app is sending) is
retried while the window lasts; too late to start → ``expired`` without calling WeCom.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import update

from siyu.connectors.wecom.client import WeComClient
from siyu.connectors.wecom.errors import WeComError, WeComUnavailable
from siyu.domain import channel_code as rules
from siyu.services.context import Context
from siyu.stores.state.channel_code_models import ChannelCodeAddRow
from siyu.stores.state.models import utcnow

log = logging.getLogger(__name__)
FINAL = frozenset({"sent", "delivered_before", "expired", "failed", "none"})
RETRY_41096 = 5
RETRY_PAUSE = 1.0


def compose(welcome: dict[str, Any], name: str, guide: str) -> tuple[str, list[dict[str, Any]]]:
    """The code's welcome text with {name}/{guide}/{coupon} filled, and its attachments."""
    coupon = welcome.get("coupon") or {}
    text = rules.render_welcome(str(welcome.get("text") or ""), name, guide, str(coupon.get("title") or ""))
    return text, [dict(a) for a in welcome.get("attachments") or []]


def _claim(ctx: Context, add_id: int) -> str | None:
    """Switch the add's welcome to ``sending``; returns None when claimed, else its final status."""
    with ctx.sessions() as s, s.begin():
        done = s.execute(
            update(ChannelCodeAddRow)
            .where(ChannelCodeAddRow.id == add_id, ChannelCodeAddRow.welcome.in_(("pending", "sending")))
            .values(welcome="sending", updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        if done.rowcount == 1:  # type: ignore[attr-defined]
            return None
        row = s.get(ChannelCodeAddRow, add_id)
        return row.welcome if row else "none"


def _finish(ctx: Context, add_id: int, status: str, detail: str, text: str = "") -> str:
    with ctx.sessions() as s, s.begin():
        s.execute(
            update(ChannelCodeAddRow)
            .where(ChannelCodeAddRow.id == add_id)
            .values(welcome=status, welcome_detail=detail[:2000], welcome_text=text, updated_at=utcnow())
        )
    return status


def send(
    ctx: Context,
    add_id: int,
    client: WeComClient,
    welcome_code: str,
    create_time: int,
    text: str,
    attachments: Sequence[dict[str, Any]],
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Send one add's welcome (at most once); returns the status recorded on its onboarding row."""
    already = _claim(ctx, add_id)
    if already is not None:
        return already
    if not welcome_code:
        return _finish(ctx, add_id, "none", "no WelcomeCode in the add event (WeCom allows no welcome here)")
    if not text and not attachments:
        return _finish(ctx, add_id, "none", "the code has no welcome message")
    for attempt in range(1, RETRY_41096 + 1):
        left = rules.welcome_left(create_time, clock())
        if left < rules.WELCOME_MARGIN:
            late = clock() - create_time
            return _finish(
                ctx, add_id, "expired", f"{late:.1f} s after the add; WeCom takes a welcome within 20 s", text
            )
        try:
            client.send_welcome_msg(welcome_code, text, attachments)
            return _finish(ctx, add_id, "sent", f"sent {clock() - create_time:.1f} s after the add", text)
        except WeComUnavailable:
            raise  # network: the row stays ``sending`` and the callback is retried (41051 tells if it went out)
        except WeComError as err:
            if err.errcode == 41051:
                return _finish(ctx, add_id, "delivered_before", "41051: WeCom already delivered this welcome", text)
            if err.errcode == 41050:
                return _finish(ctx, add_id, "expired", "41050: WeCom says the welcome code expired", text)
            if err.errcode == 41096 and attempt < RETRY_41096:
                log.info("welcome of add %s: 41096 (another app sending), retry %s", add_id, attempt)
                sleep(min(RETRY_PAUSE, max(0.0, left - rules.WELCOME_MARGIN)))
                continue
            return _finish(ctx, add_id, "failed", f"{err.errcode}: {err.meaning} — {err.action}", text)
    return _finish(ctx, add_id, "failed", "41096 on every attempt", text)
