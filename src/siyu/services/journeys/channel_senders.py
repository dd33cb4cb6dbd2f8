"""Journey sends through the messaging outbox (SMS, email, webhook).

The step's idempotency key becomes the outbox message's idempotency key, so the call a journey repeats after a
crash returns the first message and nothing is sent twice. Journey sends are marketing: the brand's daily cap
(SMS, email, webhook and WeCom mass sends together) applies, and a capped customer is reported, not sent.
"""

from __future__ import annotations

import json
from typing import Any

from siyu.domain.models import Role
from siyu.errors import SiyuError
from siyu.services import messaging
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.journeys.senders import OutboundMessage, SendResult

CHANNELS: tuple[str, ...] = ("sms", "email", "webhook")


def journey_user(brand_id: str) -> User:
    """The identity journey sends are made under (recorded as the outbox row's creator)."""
    return User(0, brand_id, "journey", "journey", Role.ADMIN, None, "zh")


def _params(content: str) -> dict[str, Any]:
    """SMS template variables: the action's content as a JSON object, or ``{"content": …}``."""
    try:
        value = json.loads(content) if content.strip().startswith("{") else None
    except ValueError:
        value = None
    return value if isinstance(value, dict) else ({"content": content} if content else {})


class OutboxSender:
    """A ``Sender`` for one outbox channel."""

    def __init__(self, channel: str) -> None:
        if channel not in CHANNELS:
            raise SiyuError(f"the outbox sends {', '.join(CHANNELS)}, not {channel!r}", "channel")
        self.channel = channel

    def request(self, m: OutboundMessage) -> messaging.SendRequest:
        """The outbox request for a journey message."""
        common: dict[str, Any] = {
            "channel": self.channel,
            "customer_id": m.customer_id,
            "purpose": "marketing",
            "idempotency_key": m.key,
        }
        if self.channel == "sms":
            return messaging.SendRequest(**common, template=m.template, params=_params(m.content))
        if self.channel == "email":
            return messaging.SendRequest(**common, subject=m.template or m.journey_id, text=m.content)
        payload = {"journey_id": m.journey_id, "node_id": m.node_id, "customer_id": m.customer_id, "content": m.content}
        return messaging.SendRequest(**common, topic=m.template or "journey.action", payload=payload)

    def send(self, ctx: Context, message: OutboundMessage) -> SendResult:
        """Accept the message into the outbox (delivered by the queue); errors come back with their reason."""
        try:
            row, _created = messaging.send(ctx, journey_user(message.brand_id), self.request(message))
        except SiyuError as err:
            final = isinstance(err, messaging.CapReached)  # the same day, the same answer: not retried
            return SendResult(False, f"{err.field}: {err.message}" if err.field else err.message, final=final)
        return SendResult(True, provider_id=str(row["id"]))


DEFAULT_SENDERS: dict[str, OutboxSender] = {c: OutboxSender(c) for c in CHANNELS}
