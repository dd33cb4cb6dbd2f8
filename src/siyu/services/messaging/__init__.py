"""Messaging over SMS, email and webhooks: the outbox (``outbox``) and per-brand provider settings (``providers``)."""

from siyu.services.messaging.outbox import (
    CHANNELS,
    STATUSES,
    CapReached,
    SendRequest,
    cap_split,
    deliver,
    get_message,
    list_messages,
    process_due,
    resend,
    send,
    sent_today,
)
from siyu.services.messaging.providers import marketing_cap, public_settings, set_marketing_cap, set_provider

__all__ = [
    "CHANNELS",
    "STATUSES",
    "CapReached",
    "SendRequest",
    "cap_split",
    "deliver",
    "get_message",
    "list_messages",
    "marketing_cap",
    "process_due",
    "public_settings",
    "resend",
    "send",
    "sent_today",
    "set_marketing_cap",
    "set_provider",
]
