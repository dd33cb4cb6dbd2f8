"""Messaging over HTTP: send (SMS / email / webhook through the outbox), the outbox with filters, dead letters,
re-send, provider settings (admins and operators; secrets are never returned) and the marketing cap.

Every endpoint is rate limited per user (``RATE`` requests/s, burst ``BURST``; 429 with Retry-After); list
endpoints return at most 500 rows; message bodies are bounded (see ``siyu.services.messaging.outbox``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Header, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from siyu.api.auth import current_user
from siyu.api.deps import get_ctx
from siyu.api.pii import PiiMode, masked_page
from siyu.domain.pii import mask_record
from siyu.services import audit, messaging
from siyu.services import pii as pii_service
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.rate_limit import check_rate

router = APIRouter(prefix="/api/messaging", tags=["messaging"])
RATE, BURST = 20.0, 40
SEND_RATE, SEND_BURST = 10.0, 20


def limited(user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> User:
    """The current user, if within the per-user request rate."""
    check_rate(ctx, "messaging.api_bucket", RATE, BURST, str(user.id))
    return user


class SendBody(BaseModel):
    """One message. SMS: template + params; email: subject + text (+ html); webhook: topic + payload."""

    channel: str = Field(max_length=16, description="sms | email | webhook")
    recipient: str | None = Field(default=None, max_length=320, description="phone or email; default the customer's")
    customer_id: str | None = Field(default=None, max_length=64)
    purpose: str = Field(
        default="transactional", max_length=16, description="marketing (capped per day) | transactional"
    )
    template: str = Field(default="", max_length=64, description="SMS template code, e.g. SMS_71390007")
    params: dict[str, Any] = Field(default_factory=dict, description="SMS template variables")
    sign_name: str | None = Field(default=None, max_length=100)
    subject: str = Field(default="", max_length=200)
    text: str = Field(default="", max_length=messaging.outbox.MAX_EMAIL_CHARS)
    html: str | None = Field(default=None, max_length=messaging.outbox.MAX_EMAIL_CHARS)
    topic: str = Field(default="", max_length=64)
    payload: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = Field(default=None, max_length=200)


class ProviderBody(BaseModel):
    provider: str = Field(max_length=32, description="sms: aliyun; email: smtp")
    settings: dict[str, Any] = Field(default_factory=dict, description="fields of the provider; empty secret = keep")


class CapBody(BaseModel):
    marketing_daily_cap: int = Field(description="marketing messages per customer per day (0-20)")


@router.post("/send", status_code=201)
def send(
    body: SendBody,
    response: Response,
    idempotency_key: str | None = Header(default=None, max_length=200),
    user: User = Depends(limited),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """Accept a message into the outbox and queue it (201); the same ``Idempotency-Key`` again returns the first
    message (200) and sends nothing. A marketing message beyond the brand's daily cap per customer is refused (409)."""
    check_rate(ctx, "messaging.send_bucket", SEND_RATE, SEND_BURST, user.brand_id, "sends for this brand")
    req = messaging.SendRequest(**{**body.model_dump(), "idempotency_key": idempotency_key or body.idempotency_key})
    message, created = messaging.send(ctx, user, req)
    if not created:
        response.status_code = 200
    return mask_record(message, ("recipient",))


@router.get("/outbox")
def outbox(
    status: str | None = None,
    channel: str | None = None,
    purpose: str | None = None,
    customer_id: str | None = None,
    recipient: str | None = None,
    limit: int = 50,
    offset: int = 0,
    pii_mode: PiiMode = "masked",
    user: User = Depends(limited),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """Messages newest first, filtered; ``by_status`` counts them (a guide: only messages they sent). Recipients
    are masked unless ``pii=clear`` (an audited reveal)."""
    page = messaging.list_messages(ctx, user, status, channel, purpose, customer_id, recipient, limit, offset)
    return masked_page(ctx, user, page, pii_mode, "messaging.outbox")


@router.get("/dead-letters")
def dead_letters(
    channel: str | None = None,
    limit: int = 50,
    offset: int = 0,
    pii_mode: PiiMode = "masked",
    user: User = Depends(limited),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """Messages that will not be retried automatically (final error, retries used up, outcome unknown)."""
    page = messaging.list_messages(ctx, user, "dead", channel, None, None, None, limit, offset)
    return masked_page(ctx, user, page, pii_mode, "messaging.dead_letters")


@router.get("/outbox/{message_id}")
def show(
    message_id: str,
    pii_mode: PiiMode = "masked",
    user: User = Depends(limited),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """One message; its recipient masked unless ``pii=clear`` (an audited reveal)."""
    return pii_service.masked_rows(
        ctx, user, [messaging.get_message(ctx, user, message_id)], pii_mode == "clear", message_id
    )[0]


@router.post("/outbox/{message_id}/resend")
def resend(message_id: str, user: User = Depends(limited), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """Queue a dead letter again (admins and operators)."""
    return mask_record(messaging.resend(ctx, user, message_id), ("recipient",))


@router.get("/providers")
def providers(user: User = Depends(limited), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """Provider settings per channel; secrets appear only as ``<name>_set``."""
    return messaging.public_settings(ctx, user)


@router.put("/providers/{channel}")
def set_provider(
    channel: str, body: ProviderBody, user: User = Depends(limited), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Set the channel's provider (admins and operators); an empty secret keeps the stored one."""
    saved = messaging.set_provider(ctx, user, channel, body.provider, body.settings)
    detail = {"provider": body.provider, "settings": sorted(body.settings)}  # names only, never values
    audit.record(ctx, user.brand_id, user, "messaging.provider", channel, detail)
    return saved


@router.put("/cap")
def set_cap(body: CapBody, user: User = Depends(limited), ctx: Context = Depends(get_ctx)) -> JSONResponse:
    """Change the brand's per-customer daily cap on marketing messages."""
    cap = messaging.set_marketing_cap(ctx, user, body.marketing_daily_cap)
    return JSONResponse({"marketing_daily_cap": cap.per_day})
