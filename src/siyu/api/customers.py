"""Customer search and customer 360 over HTTP (guide users see only their own customers). Personal data (name,
phone, email, WeCom / WeChat ids) is masked; ``POST /api/customers/{id}/reveal`` shows it and is audited."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field

from siyu.api.auth import current_user
from siyu.api.deps import get_ctx
from siyu.domain.pii import mask_record
from siyu.services import customers as service
from siyu.services import pii
from siyu.services.brands import User
from siyu.services.context import Context

router = APIRouter(prefix="/api/customers", tags=["customers"])


@router.get("")
def search(
    q: str = "",
    page: int = 1,
    page_size: int = 20,
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """Search by phone, name, customer id, identifier value or tag name; paged with a total count (personal data
    masked: reveal one customer with POST /api/customers/{id}/reveal)."""
    result = service.search_customers(ctx, user, q, page, page_size)
    return {
        "items": [
            mask_record(
                {
                    "customer_id": c.customer_id,
                    "name": c.name,
                    "phone": c.phone,
                    "email": c.email,
                    "city": c.city,
                    "updated_at": c.updated_at.isoformat() if c.updated_at else None,
                }
            )
            for c in result.items
        ],
        "total": result.total,
        "page": result.page,
        "page_size": result.page_size,
    }


@router.get("/{customer_id}", response_model=None, name="customer_360")
def show(
    customer_id: str,
    request: Request,
    events_page: int = 1,
    events_limit: int = 20,
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any] | Response:
    """The customer 360 with personal data masked; a merged-away id redirects (307) to the surviving customer."""
    view = service.get_customer_360(ctx, user, customer_id, events_page, events_limit)
    if view.customer_id != customer_id:
        url = request.url_for("customer_360", customer_id=view.customer_id)
        return RedirectResponse(str(url.include_query_params(**dict(request.query_params))), status_code=307)
    return pii.masked_360(view.as_dict())


class RevealBody(BaseModel):
    """Why the personal data is needed (kept in the audit log)."""

    reason: str = Field(default="", max_length=pii.MAX_REASON)


@router.post("/{customer_id}/reveal")
def reveal(
    customer_id: str,
    body: RevealBody | None = None,
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """The clear name, phone, email and identifiers of one customer (admins; operators when the brand allows it;
    guides for their own customers). Each reveal is an audit-log entry."""
    return pii.reveal(ctx, user, customer_id, body.reason if body else "")
