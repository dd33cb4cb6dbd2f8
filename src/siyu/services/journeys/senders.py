"""The channel-send interface of journey actions: a ``Sender`` per channel, registered per process.

Connectors implement ``Sender`` (WeCom 1:1 / group / mass-send, SMS, email, webhook) and register it with
``register_sender(channel, sender)``. Every call carries the step's idempotency key (``message.key``): a sender
must deliver a key at most once (a retry after a crash repeats the call with the same key). ``RecordingSender``
is the test sender: it stores each call in a SQLite file, once per key, and counts the calls.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from siyu.services.context import Context


@dataclass(frozen=True)
class OutboundMessage:
    key: str
    brand_id: str
    journey_id: str
    node_id: str
    customer_id: str
    channel: str
    template: str
    content: str


@dataclass(frozen=True)
class SendResult:
    """``final``: a failure that retrying cannot fix (the daily cap is reached): not tried again."""

    ok: bool
    error: str | None = None
    provider_id: str | None = None
    final: bool = False


class Sender(Protocol):
    def send(self, ctx: Context, message: OutboundMessage) -> SendResult:
        """Deliver ``message`` (at most once per ``message.key``)."""
        ...


_lock = threading.Lock()
_SENDERS: dict[str, Sender] = {}


def register_sender(channel: str, sender: Sender) -> None:
    """Use ``sender`` for ``channel`` in this process (a connector calls this when it is configured)."""
    with _lock:
        _SENDERS[channel] = sender


def unregister_sender(channel: str) -> None:
    with _lock:
        _SENDERS.pop(channel, None)


def _builtin() -> dict[str, Sender]:
    from siyu.services.journeys.channel_senders import DEFAULT_SENDERS  # imports the messaging services
    from siyu.services.journeys.wecom_senders import WECOM_SENDERS  # imports the WeCom services

    return {**DEFAULT_SENDERS, **WECOM_SENDERS}


def sender_for(channel: str) -> Sender | None:
    """The sender registered for ``channel``, else the built-in one (SMS, email and webhook through the outbox;
    WeCom 1:1, group and mass sends through ``siyu.services.wecom.mass_send``)."""
    with _lock:
        registered = _SENDERS.get(channel)
    if registered is not None:
        return registered
    return _builtin().get(channel)


def flush_senders(ctx: Context) -> int:
    """Let batching senders (WeCom mass sends) send what they collected; returns what they report sending."""
    with _lock:
        senders = {**_builtin(), **_SENDERS}
    total = 0
    for sender in senders.values():
        flush = getattr(sender, "flush", None)
        if callable(flush):
            total += int(flush(ctx) or 0)
    return total


class RecordingSender:
    """A test sender: each key is stored once in ``path`` (SQLite); ``calls`` counts every call, retries too."""

    def __init__(self, path: str | Path, fail_customers: frozenset[str] = frozenset()) -> None:
        self.path = str(path)
        self.fail_customers = fail_customers
        with sqlite3.connect(self.path, timeout=30) as con:
            con.execute(
                "CREATE TABLE IF NOT EXISTS sent (key TEXT PRIMARY KEY, channel TEXT, customer_id TEXT, "
                "journey_id TEXT, node_id TEXT, content TEXT, calls INTEGER)"
            )

    def send(self, ctx: Context, message: OutboundMessage) -> SendResult:
        if message.customer_id in self.fail_customers:
            return SendResult(False, "recipient refused (test)")
        with sqlite3.connect(self.path, timeout=30) as con:
            con.execute(
                "INSERT INTO sent VALUES (?, ?, ?, ?, ?, ?, 1) ON CONFLICT(key) DO UPDATE SET calls = calls + 1",
                (
                    message.key,
                    message.channel,
                    message.customer_id,
                    message.journey_id,
                    message.node_id,
                    message.content,
                ),
            )
        return SendResult(True, provider_id=message.key)

    def sent(self) -> list[tuple[str, str, str, int]]:
        """(key, channel, customer_id, calls) of every key delivered."""
        with sqlite3.connect(self.path, timeout=30) as con:
            return list(con.execute("SELECT key, channel, customer_id, calls FROM sent ORDER BY key"))
