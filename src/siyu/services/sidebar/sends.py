"""Sends from the sidebar, counted when WeCom confirms them.

The page first *prepares* a send (``prepare``: the ``sendChatMessage`` argument is made and a one-time token is
issued, its SHA-256 kept in ``script_sends``), then calls ``wx.invoke('sendChatMessage', ...)`` and posts the
callback's ``err_msg`` with the token (``confirm``). Only ``sendChatMessage:ok`` counts a use (``copy:ok`` for a
copy outside WeCom); ``sendChatMessage:cancel`` marks the send cancelled, anything else failed. A token confirms
once (a single conditional UPDATE, so two confirms racing count one use) and only within ``SEND_TTL``: a prepare
never confirmed expires uncounted.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import Conflict, NotFound, SiyuError
from siyu.services.scripts import active_row, count_use
from siyu.stores.state.models import utcnow
from siyu.stores.state.script_models import ScriptSendRow

SEND_TTL = timedelta(minutes=15)
OK = {"sidebar": "sendChatMessage:ok", "copy": "copy:ok"}
MAX_ERR_MSG = 64


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def prepare(
    ctx: Context,
    user: User,
    script_id: int,
    customer_id: str = "",
    chat_id: str = "",
    channel: str = "sidebar",
    now: datetime | None = None,
) -> dict[str, Any]:
    """Record a send of an item to a customer or into a group chat (the caller checked they are the user's);
    returns ``{"token", "expires_at"}``. Nothing is counted yet."""
    if channel not in OK:
        raise SiyuError(f"channel must be one of {', '.join(OK)}", "channel")
    if bool(customer_id) == bool(chat_id):
        raise SiyuError("give either customer_id (a chat with a customer) or chat_id (a group chat)", "customer_id")
    at = now or utcnow()
    token = secrets.token_urlsafe(24)
    with ctx.sessions() as s, s.begin():
        active_row(s, user, script_id)
        row = ScriptSendRow(
            brand_id=user.brand_id,
            script_id=script_id,
            guide_id=user.guide_id or "",
            customer_id=customer_id,
            chat_id=chat_id,
            channel=channel,
            token_hash=_hash(token),
            status="prepared",
            prepared_at=at,
            expires_at=at + SEND_TTL,
        )
        s.add(row)
    return {"token": token, "expires_at": (at + SEND_TTL).isoformat()}


def confirm(ctx: Context, user: User, token: str, err_msg: str, now: datetime | None = None) -> dict[str, Any]:
    """The outcome WeCom's callback reported for a prepared send: ``{"status", "counted", "use_count"}``.
    NotFound for a token that is not the user's; Conflict when it was confirmed before; SiyuError when expired."""
    at = now or utcnow()
    err_msg = (err_msg or "").strip()[:MAX_ERR_MSG]
    if not err_msg:
        raise SiyuError("err_msg is the sendChatMessage callback's err_msg, e.g. 'sendChatMessage:ok'", "err_msg")
    S = ScriptSendRow
    with ctx.sessions() as s, s.begin():
        row = s.scalar(select(S).where(S.token_hash == _hash(token or ""), S.brand_id == user.brand_id))
        if row is None or row.guide_id != (user.guide_id or ""):
            raise NotFound("this send token is unknown; send the script again", "token")
        ok = err_msg == OK[row.channel]
        status = "sent" if ok else "cancelled" if err_msg.endswith(":cancel") else "failed"
        done = s.execute(  # type: ignore[attr-defined]
            update(S)
            .where(S.id == row.id, S.status == "prepared", S.expires_at > at)
            .values(status=status, result=err_msg, confirmed_at=at)
        ).rowcount
        if done != 1:
            s.refresh(row)
            if row.status != "prepared":
                raise Conflict(f"this send was already confirmed ({row.status}); a token confirms once", "token")
            raise SiyuError(f"this send expired ({int(SEND_TTL.total_seconds() // 60)} minutes); send again", "token")
        script = active_row(s, user, row.script_id)
        count = script.use_count
        if ok:
            count = count_use(s, user, row.script_id, row.customer_id, row.chat_id, row.channel, at)
    return {"status": status, "counted": ok, "use_count": int(count), "script_id": row.script_id}
