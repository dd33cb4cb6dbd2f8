"""Admin API for the brand's Segment write keys: list, create (secret shown once), revoke."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from siyu.api.auth import current_user
from siyu.api.deps import get_ctx
from siyu.domain.models import Role
from siyu.services import audit, write_keys
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import Forbidden

router = APIRouter(prefix="/api/write-keys", tags=["ingestion"])


class CreateKeyBody(BaseModel):
    """Body of ``POST /api/write-keys``."""

    label: str = ""


def _admin(user: User = Depends(current_user)) -> User:
    if user.role != Role.ADMIN:
        raise Forbidden("only an admin of the brand may manage write keys", "role")
    return user


def _json(key: write_keys.WriteKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "brand_id": key.brand_id,
        "key_prefix": key.key_prefix,
        "label": key.label,
        "created_at": key.created_at.isoformat(),
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }


@router.get("", summary="List the brand's write keys (revoked ones included)")
def list_keys(user: User = Depends(_admin), ctx: Context = Depends(get_ctx)) -> list[dict[str, Any]]:
    return [_json(k) for k in write_keys.list_keys(ctx, user.brand_id)]


@router.post("", status_code=201, summary="Create a write key; the secret `key` is returned only here")
def create_key(body: CreateKeyBody, user: User = Depends(_admin), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    key, secret = write_keys.create_key(ctx, user.brand_id, body.label)
    audit.record(ctx, user.brand_id, user, "write_key.create", key.id, {"label": body.label})
    return {**_json(key), "key": secret}


@router.delete("/{key_id}", summary="Revoke a write key (its requests get 401)")
def revoke_key(key_id: str, user: User = Depends(_admin), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    revoked = _json(write_keys.revoke_key(ctx, key_id, brand_id=user.brand_id))
    audit.record(ctx, user.brand_id, user, "write_key.revoke", key_id)
    return revoked
