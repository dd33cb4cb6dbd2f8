"""Who may reveal personal data over HTTP: ``GET / PUT /api/pii/settings`` (operators allowed or not; admins
change it, audited). Reveals themselves: ``POST /api/customers/{id}/reveal`` and ``?pii=clear`` on fulfilment."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from siyu.api.auth import current_user
from siyu.api.deps import get_ctx
from siyu.services import pii
from siyu.services.brands import User
from siyu.services.context import Context

router = APIRouter(prefix="/api/pii", tags=["pii"])

# ``?pii=`` of the list endpoints that show personal data: masked (default) or clear (an audited reveal)
PiiMode = Annotated[
    Literal["masked", "clear"],
    Query(alias="pii", description="personal data masked, or clear (an audited reveal; see /api/pii/settings)"),
]


def masked_page(ctx: Context, user: User, page: dict[str, Any], mode: str, target: str) -> dict[str, Any]:
    """``page`` with its ``items`` masked, or in clear for ``mode`` "clear" (checked and audited as ``target``)."""
    return {**page, "items": pii.masked_rows(ctx, user, page["items"], mode == "clear", target)}


class PiiSettings(BaseModel):
    """Whether operators may reveal customers' personal data (admins always may; guides their own customers)."""

    operators_may_reveal: bool


@router.get("/settings")
def get_settings(user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """The brand's reveal policy and whether the current user may reveal."""
    return {
        "operators_may_reveal": pii.operators_may_reveal(ctx, user.brand_id),
        "you_may_reveal": pii.may_reveal(ctx, user),
    }


@router.put("/settings")
def put_settings(
    body: PiiSettings, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Allow operators to reveal personal data, or not (admins only; an audit-log entry)."""
    return pii.set_operators_may_reveal(ctx, user, body.operators_may_reveal)
