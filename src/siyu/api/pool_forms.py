"""Lead forms of the customer pool (``/api/pool/forms``): list (any user of the brand) and define (admins and
operators). The public form itself is ``/m/{brand}/form/{form_id}`` (``siyu.public.lead_form``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from siyu.api.auth import current_user
from siyu.api.deps import get_ctx
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.guide_work import lead_forms

router = APIRouter(prefix="/api/pool/forms", tags=["guide work"])


class FormIn(BaseModel):
    title: str = Field(max_length=60)
    store_id: str | None = Field(default=None, max_length=64)
    region: str | None = Field(default=None, max_length=64)
    active: bool = True


@router.get("")
def list_forms(user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> list[dict[str, Any]]:
    """The brand's lead forms with their public path."""
    return lead_forms.list_forms(ctx, user.brand_id)


@router.put("/{form_id}")
def put_form(
    form_id: str, body: FormIn, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Create or change a lead form (title; store and region for the pool's store / region rules)."""
    return lead_forms.set_form(ctx, user, form_id[:100], body.title, body.store_id, body.region, body.active)
