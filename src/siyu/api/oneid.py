"""OneID REST API under /api/oneid: conflicts, split (unmerge), look-up and merge history. Admin/operator only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from siyu.api.auth import current_user
from siyu.api.deps import get_ctx
from siyu.domain.identity import IdentifierError, normalize
from siyu.domain.models import Identity, Role
from siyu.services import oneid as service
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import Forbidden, NotFound, SiyuError

router = APIRouter(prefix="/api/oneid", tags=["oneid"])


def operator_user(user: User = Depends(current_user)) -> User:
    """The current user, who must be an admin or operator (guides may not see or change identity links)."""
    if user.role not in (Role.ADMIN, Role.OPERATOR):
        raise Forbidden("only admins and operators may manage OneID (conflicts, splits)")
    return user


class IdentifierIn(BaseModel):
    """An identifier: a type (phone, email, unionid, ...) and a raw value (normalised by the server)."""

    type: str
    value: str


class SplitBody(BaseModel):
    """Split the named identifiers off a customer into a new customer."""

    customer_id: str
    identifiers: list[IdentifierIn] = Field(min_length=1)
    reason: str


def _identity(i: IdentifierIn, where: str) -> Identity:
    try:
        return normalize(i.type, i.value)
    except IdentifierError as exc:
        raise SiyuError(str(exc), field=where) from exc


@router.get("/conflicts")
def conflicts(
    include_resolved: bool = False, user: User = Depends(operator_user), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Conflicts OneID recorded instead of merging (newest first)."""
    rows = service.list_conflicts(ctx, user.brand_id, include_resolved=include_resolved)
    return {"brand_id": user.brand_id, "count": len(rows), "conflicts": rows}


@router.post("/split")
def split(body: SplitBody, user: User = Depends(operator_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """Undo a wrong merge: the identifiers get a new customer; their records follow them."""
    idents = [_identity(i, f"identifiers[{k}]") for k, i in enumerate(body.identifiers)]
    new_id = service.split(ctx, user.brand_id, body.customer_id, idents, body.reason, actor=user)  # audited
    return {
        "customer_id": body.customer_id,
        "new_customer_id": new_id,
        "identifiers": service.identifiers_of(ctx, user.brand_id, new_id),
    }


@router.get("/lookup")
def lookup(
    type: str, value: str, user: User = Depends(operator_user), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """The customer an identifier belongs to, with all its identifiers and merge history."""
    ident = _identity(IdentifierIn(type=type, value=value), "value")
    cid = service.customer_of(ctx, user.brand_id, ident)
    if cid is None:
        raise NotFound(f"{ident.type}:{ident.value} does not belong to any customer yet", field="value")
    return {
        "customer_id": cid,
        "identifiers": service.identifiers_of(ctx, user.brand_id, cid),
        "merges": service.merge_history(ctx, user.brand_id, cid),
    }
