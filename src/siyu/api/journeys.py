"""Journeys (SOP / 客户旅程) over HTTP: CRUD with versions, validate, publish / pause / resume / stop, manual entry,
per-node statistics, the definition schema for a flow editor, suppressions, and the guides' task inbox.

Validation problems come back as 400 ``{"error", "field", "errors": [{node_id, field, path, message}]}`` so an
editor can mark the node and the field; ``POST /api/journeys/validate`` answers 200 with ``valid`` and ``errors``.
Guides may read journeys and their stats; they see and finish only their own tasks.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from siyu.api.auth import current_user
from siyu.api.deps import get_ctx
from siyu.domain.journey import JourneyDefinition, JourneyError
from siyu.domain.journey.definition import NODE_KINDS
from siyu.domain.models import Role
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import Forbidden, SiyuError
from siyu.services.journeys import definitions as service
from siyu.services.journeys import facts
from siyu.services.journeys import tasks as task_service
from siyu.services.journeys import templates as template_service
from siyu.services.journeys.entries import enter_customers
from siyu.services.journeys.stats import journey_stats
from siyu.stores.state.journey_models import JourneySuppressionRow

router = APIRouter(prefix="/api/journeys", tags=["journeys"])
MAX_ENTER = 10_000


class JourneyBody(BaseModel):
    name: str = Field(max_length=200)
    definition: Any = Field(description="a journey definition (docs/journeys.md)")
    description: str = Field(default="", max_length=2000)


class JourneyPatch(BaseModel):
    name: str | None = Field(default=None, max_length=200)
    definition: Any = None
    description: str | None = Field(default=None, max_length=2000)


class ValidateBody(BaseModel):
    definition: Any


class EnterBody(BaseModel):
    customer_ids: list[str] = Field(min_length=1, max_length=MAX_ENTER)
    key: str = Field(default="manual", min_length=1, max_length=100, description="dedup key of this entry")


class TaskDone(BaseModel):
    note: str = Field(default="", max_length=2000)


class SuppressionBody(BaseModel):
    customer_id: str = Field(min_length=1, max_length=128)
    channel: str = Field(default="*", max_length=32, description="a channel (sms, wecom_1to1, task, ...) or *")
    reason: str = Field(default="", max_length=200)


def _errors_response(exc: JourneyError) -> JSONResponse:
    return JSONResponse(status_code=400, content={"error": exc.message, "field": exc.field, "errors": exc.errors})


@router.get("/schema")
def schema(user: User = Depends(current_user)) -> dict[str, Any]:
    """The definition's JSON Schema, the node kinds and each kind's branches (for a flow editor)."""
    return {
        "json_schema": JourneyDefinition.model_json_schema(by_alias=True),
        "node_kinds": list(NODE_KINDS),
        "branches": {
            "wait": ["next"],
            "wait_event": ["event", "timeout"],
            "wait_segment": ["matched", "timeout"],
            "condition": ["<each branch name>", "else"],
            "split": ["<each arm name>"],
            "experiment": ["<each arm name>", "holdout (when holdout_percent > 0)"],
            "action": ["next"],
            "exit": [],
        },
    }


@router.post("/validate")
def validate(body: ValidateBody, user: User = Depends(current_user)) -> dict[str, Any]:
    """Check a definition without saving it: ``valid`` and the problems (node id, field, path, message)."""
    try:
        service.validate(body.definition)
    except JourneyError as exc:
        return {"valid": False, "errors": exc.errors}
    return {"valid": True, "errors": []}


@router.get("/tasks")
def list_tasks(
    status: str | None = Query("open"),
    guide_id: str | None = None,
    due_before: datetime | None = None,
    page: int = 1,
    page_size: int = 50,
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """Staff tasks, soonest due first (a guide: their own only). ``status``: open, done, skipped or empty = all."""
    return task_service.list_tasks(ctx, user, status or None, guide_id, due_before, page, page_size)


@router.post("/tasks/{task_id}/complete")
def complete_task(
    task_id: str, body: TaskDone, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    return task_service.finish_task(ctx, user, task_id, "done", body.note)


@router.post("/tasks/{task_id}/skip")
def skip_task(
    task_id: str, body: TaskDone, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    return task_service.finish_task(ctx, user, task_id, "skipped", body.note)


@router.post("/suppressions")
def add_suppression(
    body: SuppressionBody, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Never contact a customer on a channel (``*`` = any) from journeys: unsubscribes, complaints."""
    service.require_editor(user)
    with ctx.sessions() as s, s.begin():
        row = s.get(JourneySuppressionRow, (user.brand_id, body.customer_id, body.channel))
        if row is None:
            s.add(
                JourneySuppressionRow(
                    brand_id=user.brand_id, customer_id=body.customer_id, channel=body.channel, reason=body.reason
                )
            )
    return {"customer_id": body.customer_id, "channel": body.channel, "suppressed": True}


class TemplateBody(BaseModel):
    name: str = Field(max_length=200)
    params: dict[str, Any] = Field(default_factory=dict, description="the template's parameters")


@router.get("/templates")
def templates(user: User = Depends(current_user)) -> dict[str, Any]:
    """Ready-made journeys (win-back, new contact)."""
    return {"items": template_service.list_templates()}


@router.post("/templates/{template}", response_model=None)
def from_template(
    template: str, body: TemplateBody, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)
) -> dict[str, Any] | JSONResponse:
    """Save a template's audience segment and the journey triggered on it (a draft: publish to start)."""
    try:
        return template_service.create_from_template(ctx, user, template, body.name, body.params).as_dict()
    except JourneyError as exc:
        return _errors_response(exc)


@router.get("")
def list_journeys(user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    return {"items": [j.as_dict() for j in service.list_journeys(ctx, user)]}


@router.post("", response_model=None)
def create(
    body: JourneyBody, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)
) -> dict[str, Any] | JSONResponse:
    try:
        return service.create_journey(ctx, user, body.name, body.definition, body.description).as_dict()
    except JourneyError as exc:
        return _errors_response(exc)


@router.get("/{journey_id}")
def get(journey_id: str, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    return service.get_journey(ctx, user, journey_id).as_dict()


@router.patch("/{journey_id}", response_model=None)
def patch(
    journey_id: str, body: JourneyPatch, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)
) -> dict[str, Any] | JSONResponse:
    """Rename, or save a changed definition as a new version (publish to make it live)."""
    try:
        return service.update_journey(ctx, user, journey_id, body.name, body.definition, body.description).as_dict()
    except JourneyError as exc:
        return _errors_response(exc)


@router.get("/{journey_id}/versions")
def versions(journey_id: str, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    return {"items": service.versions(ctx, user, journey_id)}


@router.post("/{journey_id}/publish", response_model=None)
def publish(
    journey_id: str, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)
) -> dict[str, Any] | JSONResponse:
    """Make the current version live; customers inside finish on the version they entered with."""
    try:
        return service.publish(ctx, user, journey_id).as_dict()
    except JourneyError as exc:
        return _errors_response(exc)


@router.post("/{journey_id}/pause")
def pause(journey_id: str, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """Hold every customer where they are; no new entries."""
    return service.set_status(ctx, user, journey_id, "paused").as_dict()


@router.post("/{journey_id}/resume")
def resume(journey_id: str, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    return service.set_status(ctx, user, journey_id, "active").as_dict()


@router.post("/{journey_id}/stop")
def stop(journey_id: str, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """End the journey: every customer inside exits (reason ``stopped``)."""
    return service.set_status(ctx, user, journey_id, "stopped").as_dict()


@router.post("/{journey_id}/enter")
def enter(
    journey_id: str, body: EnterBody, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Enter customers by hand (operators; the journey must be active). Unknown customer ids are reported."""
    if user.role == Role.GUIDE:
        raise Forbidden("guides may not enter customers into journeys; ask an operator", "role")
    j = service.get_journey(ctx, user, journey_id)
    if j.status != "active":
        raise SiyuError(f"the journey is {j.status}; publish (or resume) it first", "status")
    ids = list(dict.fromkeys(body.customer_ids))
    known = facts.existing_customers(ctx, user.brand_id, ids)
    unknown = [c for c in ids if c not in known]
    n = enter_customers(ctx, user.brand_id, journey_id, [(c, "manual:" + body.key) for c in ids if c in known])
    return {"entered": n, "skipped": len(known) - n, "unknown": unknown[:100], "unknown_count": len(unknown)}


@router.get("/{journey_id}/stats")
def stats(
    journey_id: str, version: int | None = None, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Per node: entered, waiting, passed per branch, outcomes, effects; experiments: arms and the decision."""
    return journey_stats(ctx, user, journey_id, version)
