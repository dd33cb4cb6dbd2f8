"""The SMS provider protocol: one ``send`` per message, answering with the vendor's id or a classified error.

Every provider maps its vendor's error codes to a meaning (what happened, what to do) and whether the same
message may be tried again later (``retryable``), so the outbox can retry, wait (``retry_after``) or give up.
``outcome_unknown`` marks answers after which the vendor may or may not have sent the message (a read timeout):
such a message is never retried automatically (it could reach the customer twice).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class SmsResult:
    """The outcome of one SMS send (after the provider's own quick retries)."""

    ok: bool
    message_id: str | None = None  # the vendor's id (Alibaba: BizId)
    request_id: str | None = None
    code: str | None = None  # the vendor's code ("OK" or an error code)
    meaning: str = ""  # what the code means and what to do
    retryable: bool = False  # the same message may be sent again later
    retry_after: float | None = None  # seconds to wait before that (rate limits)
    outcome_unknown: bool = False  # the vendor may have sent it (do not resend automatically)
    attempts: int = 1


class SmsProvider(Protocol):
    """A vendor's SMS API."""

    name: str

    def send(self, phone: str, template: str, params: Mapping[str, str], sign_name: str) -> SmsResult:
        """Send template ``template`` with ``params`` to ``phone`` (E.164, e.g. +8613800000000) signed
        ``sign_name`` (the 【签名】 shown to the customer)."""
        ...
