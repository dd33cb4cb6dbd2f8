"""WeCom operations over HTTP: corp tags (siyu → WeCom) and segment tag rules, mass sends (群发) with the daily cap,
confirmation and results, and inheritance (在职/离职继承) with per-customer outcomes.

Admins and operators change things; guides may read mass sends (their own tasks and recipients), transfers that
involve them, the tag list, and mark tags on their own customers. Every endpoint is rate limited per user
(``RATE``/s, burst ``BURST``; 429); bodies and lists are bounded (see the services).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from siyu.api.auth import current_user
from siyu.api.deps import get_ctx
from siyu.api.validation import RowId
from siyu.connectors.wecom.client import WeComClient
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.rate_limit import check_rate
from siyu.services.wecom import inheritance, mass_send, tag_rules, tags
from siyu.services.wecom.config import client_for, get_config

router = APIRouter(prefix="/api/wecom/ops", tags=["wecom-ops"])
RATE, BURST = 10.0, 30


def limited(user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> User:
    """The current user, if within the per-user request rate."""
    check_rate(ctx, "wecom_ops.bucket", RATE, BURST, str(user.id))
    return user


def _client(ctx: Context, user: User) -> WeComClient:
    return client_for(get_config(ctx, user.brand_id))


# -- tags ------------------------------------------------------------------------------------------------------
class TagBody(BaseModel):
    name: str = Field(max_length=100, description="≤ 30 characters (WeCom)")
    group_name: str = Field(default="", max_length=100, description="group by name (created when missing)")
    group_id: str = Field(default="", max_length=64, description="or an existing group's id")
    order: int | None = Field(default=None, description="the larger shows first")


class TagEditBody(BaseModel):
    name: str = Field(default="", max_length=100)
    order: int | None = None


class MarkBody(BaseModel):
    external_userid: str = Field(max_length=128)
    add: list[str] = Field(default_factory=list, max_length=100)
    remove: list[str] = Field(default_factory=list, max_length=100)


class RuleBody(BaseModel):
    segment_id: str = Field(max_length=64)
    tag_id: str = Field(default="", max_length=64, description="an existing corp tag")
    tag_name: str = Field(default="", max_length=100, description="or a new tag's name")
    group_name: str = Field(default="", max_length=100)


@router.get("/tags")
def list_tags(user: User = Depends(limited), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """The corp tag list from WeCom (groups and tags in WeCom's order) and the number of tags."""
    groups = tags.corp_tags(_client(ctx, user))
    return {"groups": groups, "total": sum(len(g["tags"]) for g in groups), "limit": tags.MAX_TAGS}


@router.post("/tags", status_code=201)
def create_tag(body: TagBody, user: User = Depends(limited), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """Create a corp tag in WeCom (then synced here)."""
    return tags.create_tag(ctx, user, _client(ctx, user), body.name, body.group_name, body.group_id, body.order)


@router.patch("/tags/{tag_id}")
def edit_tag(
    tag_id: str, body: TagEditBody, user: User = Depends(limited), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Rename / re-order a tag or a group."""
    tags.edit_tag(ctx, user, _client(ctx, user), tag_id, body.name, body.order)
    return {"id": tag_id, "updated": True}


@router.delete("/tags/{tag_id}")
def delete_tag(
    tag_id: str, group: bool = False, user: User = Depends(limited), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Delete a tag (or, with ``group=true``, a whole group)."""
    client = _client(ctx, user)
    tags.delete_tags(ctx, user, client, [] if group else [tag_id], [tag_id] if group else [])
    return {"id": tag_id, "deleted": True}


@router.post("/tags/mark")
def mark(body: MarkBody, user: User = Depends(limited), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """Add / remove tags on a customer (a guide: on their own relation only)."""
    n = tags.mark_customer(ctx, user, _client(ctx, user), body.external_userid, body.add, body.remove)
    return {"relations_marked": n}


@router.get("/tag-rules")
def rules(user: User = Depends(limited), ctx: Context = Depends(get_ctx)) -> list[dict[str, Any]]:
    return tag_rules.list_rules(ctx, user)


@router.post("/tag-rules", status_code=201)
def create_rule(body: RuleBody, user: User = Depends(limited), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """A segment → tag rule (an existing tag, or a new one by name)."""
    return tag_rules.create_rule(ctx, user, body.segment_id, body.tag_id, body.tag_name, body.group_name)


@router.post("/tag-rules/{rule_id}/refresh")
def refresh_rule(rule_id: RowId, user: User = Depends(limited), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """Recompute the segment; mark entrants, unmark leavers."""
    return tag_rules.refresh_rule(ctx, user, rule_id)


@router.delete("/tag-rules/{rule_id}")
def delete_rule(rule_id: RowId, user: User = Depends(limited), ctx: Context = Depends(get_ctx)) -> dict[str, int]:
    """Remove the rule and its tag from everyone it marked."""
    return tag_rules.delete_rule(ctx, user, rule_id)


# -- mass sends ------------------------------------------------------------------------------------------------
class MassSendBody(BaseModel):
    segment_id: str = Field(max_length=64)
    content: str = Field(default="", max_length=20_000, description="≤ 4000 bytes UTF-8 (checked with the count)")
    name: str = Field(default="", max_length=100)
    chat_type: str = Field(default="single", max_length=8, description="single (customers) | group (groups)")
    attachments: list[dict[str, Any]] = Field(default_factory=list, max_length=9)
    idempotency_key: str | None = Field(default=None, max_length=200)


@router.get("/mass-sends")
def mass_sends(
    limit: int = 100, user: User = Depends(limited), ctx: Context = Depends(get_ctx)
) -> list[dict[str, Any]]:
    """Recent mass sends with totals by recipient status."""
    return mass_send.list_sends(ctx, user, limit)


@router.post("/mass-sends", status_code=201)
def create_mass_send(
    body: MassSendBody, response: Response, user: User = Depends(limited), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Record the send (cap applied first: capped customers reported, not sent) and create the WeCom tasks.
    The same ``idempotency_key`` returns the first send (200)."""
    if body.idempotency_key and mass_send.existing(ctx, user.brand_id, body.idempotency_key):
        response.status_code = 200
    send = mass_send.create(
        ctx, user, body.segment_id, body.content, body.name, body.chat_type, body.attachments, body.idempotency_key
    )
    return send  # audited by the service (a replayed idempotency key is not a second send)


@router.get("/mass-sends/{send_id}")
def get_mass_send(send_id: str, user: User = Depends(limited), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """A send with its tasks (confirmation, stats, errors) and capped customers."""
    return mass_send.get(ctx, user, send_id)


@router.post("/mass-sends/{send_id}/dispatch")
def dispatch(send_id: str, user: User = Depends(limited), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """Create the WeCom tasks still pending (or failed earlier); created ones are never sent twice."""
    dispatched = mass_send.dispatch(ctx, user, send_id)  # audited by the service
    return {"dispatched": dispatched, **mass_send.get(ctx, user, send_id)}


@router.post("/mass-sends/{send_id}/refresh")
def refresh_mass_send(send_id: str, user: User = Depends(limited), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """Read the guides' confirmations and per-recipient results from WeCom."""
    return mass_send.refresh(ctx, user, send_id)


# -- inheritance -----------------------------------------------------------------------------------------------
class TransferBody(BaseModel):
    handover_guide_id: str = Field(max_length=64)
    takeover_guide_id: str = Field(max_length=64)
    segment_id: str | None = Field(default=None, max_length=64, description="only this segment's customers")
    resigned: bool = Field(default=False, description="离职继承 (the handover guide has left)")


@router.get("/transfers")
def transfers(limit: int = 100, user: User = Depends(limited), ctx: Context = Depends(get_ctx)) -> list[dict[str, Any]]:
    return inheritance.list_transfers(ctx, user, limit)


@router.post("/transfers", status_code=201)
def start_transfer(
    body: TransferBody, user: User = Depends(limited), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Ask WeCom to move the customers (chunks of 100); each customer's answer is recorded."""
    # audited by the service (who, which guides, which customers)
    return inheritance.start(ctx, user, body.handover_guide_id, body.takeover_guide_id, body.segment_id, body.resigned)


@router.get("/transfers/{transfer_id}")
def get_transfer(
    transfer_id: str,
    status: str | None = None,
    limit: int = 500,
    user: User = Depends(limited),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """A transfer with totals and its customers (status, errcode, reason, takeover time)."""
    return inheritance.get(ctx, user, transfer_id, status, limit)


@router.post("/transfers/{transfer_id}/refresh")
def refresh_transfer(
    transfer_id: str, user: User = Depends(limited), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Read transfer_result; move the relations of customers WeCom has moved."""
    return inheritance.refresh(ctx, user, transfer_id)
