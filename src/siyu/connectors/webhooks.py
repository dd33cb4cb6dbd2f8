"""Outgoing webhooks: JSON POSTs signed with HMAC-SHA256 of the body, retried with exponential backoff.

The receiver verifies ``X-Siyu-Signature: sha256=<hex>`` = HMAC-SHA256(secret, raw body) (``verify`` does it),
and may de-duplicate on ``X-Siyu-Delivery`` (the same id on every retry of one delivery).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

SIGNATURE_HEADER = "X-Siyu-Signature"
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def sign(body: bytes, secret: str) -> str:
    """The signature header value: ``sha256=`` + hex HMAC-SHA256 of ``body`` with ``secret``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str, header: str | None) -> bool:
    """True when ``header`` is the signature of ``body`` (constant-time comparison)."""
    return header is not None and hmac.compare_digest(sign(body, secret), header)


def encode(payload: dict[str, Any]) -> bytes:
    """The JSON body exactly as sent (UTF-8, compact, keys sorted)."""
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str).encode()


@dataclass(frozen=True)
class Delivery:
    """The outcome of one delivery after its retries."""

    delivery_id: str
    ok: bool
    attempts: int
    status_code: int | None
    error: str | None
    body_sha256: str


def deliver(
    url: str,
    payload: dict[str, Any],
    secret: str,
    topic: str,
    retries: int = 3,
    backoff: float = 0.5,
    timeout: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    delivery_id: str | None = None,
) -> Delivery:
    """POST ``payload`` to ``url``; retry connection errors and 408/425/429/5xx up to ``retries`` more times,
    waiting ``backoff × 2^(attempt-1)`` seconds between attempts. Other 4xx answers are final.

    ``delivery_id`` (default: a new one) is sent as ``X-Siyu-Delivery``: a re-sent dead letter keeps its id, so
    a receiver that saw it before can tell."""
    body = encode(payload)
    delivery_id = delivery_id or uuid.uuid4().hex
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        SIGNATURE_HEADER: sign(body, secret),
        "X-Siyu-Event": topic,
        "X-Siyu-Delivery": delivery_id,
        "User-Agent": "siyu-webhooks/1",
    }
    status: int | None = None
    error: str | None = None
    attempt = 0
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        while True:
            attempt += 1
            try:
                resp = client.post(url, content=body, headers=headers)
                status, error = resp.status_code, None
                if 200 <= status < 300:
                    return Delivery(delivery_id, True, attempt, status, None, hashlib.sha256(body).hexdigest())
                error = f"HTTP {status}: {resp.text[:200]}"
                retryable = status in RETRY_STATUSES
            except httpx.HTTPError as exc:
                status, error, retryable = None, f"{type(exc).__name__}: {exc}", True
            if not retryable or attempt > retries:
                return Delivery(delivery_id, False, attempt, status, error, hashlib.sha256(body).hexdigest())
            sleep(backoff * 2 ** (attempt - 1))
