"""Customer segments over HTTP: CRUD with versions, live preview, members, export, refresh, lookalike.

Guides may read (counts and members restricted to their own customers) but not change segments. Refreshes also
run on the schedule (``siyu.workers.schedule``, started by the app's lifespan).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from siyu.api.auth import current_user
from siyu.api.deps import get_ctx
from siyu.domain.pii import mask_records
from siyu.services import audit
from siyu.services import lookalike as lookalike_service
from siyu.services import segments as service
from siyu.services.brands import User
from siyu.services.context import Context

router = APIRouter(prefix="/api/segments", tags=["segments"])


class PreviewBody(BaseModel):
    """A definition to count (nothing is saved)."""

    definition: Any = Field(description="a segment definition (docs/segments.md)")
    as_of: str | None = Field(default=None, description="YYYY-MM-DD; default the day after the last data")
    sample: int = 20


class SegmentBody(BaseModel):
    name: str
    definition: Any
    description: str = ""


class SegmentPatch(BaseModel):
    name: str | None = None
    definition: Any = None
    description: str | None = None


class LookalikeBody(BaseModel):
    top: int = 100
    holdout: float = 0.2
    seed: int = 7
    as_of: str | None = None


@router.post("/preview")
def preview(body: PreviewBody, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """Count and a sample of the customers a definition matches (the builder's live count; names and phones
    masked)."""
    found = service.preview(ctx, user, body.definition, body.as_of, body.sample)
    return {**found, "sample": mask_records(found["sample"])}


@router.get("")
def list_segments(user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """The brand's segments with their member counts (a guide: counts of their own customers)."""
    return {"items": [s.as_dict() for s in service.list_segments(ctx, user)]}


@router.post("", status_code=201)
def create(body: SegmentBody, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """Save a segment (version 1) and materialise its members."""
    return service.create_segment(ctx, user, body.name, body.definition, body.description).as_dict()


@router.post("/refresh")
def refresh_all(user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """Refresh every segment of the user's brand now (normally done on the schedule)."""
    service.require_editor(user)
    return {"items": service.refresh_brand(ctx, user.brand_id)}


@router.get("/{segment_id}")
def show(segment_id: str, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """One segment with its current definition."""
    return service.get_segment(ctx, user, segment_id).as_dict()


@router.patch("/{segment_id}")
def update(
    segment_id: str, body: SegmentPatch, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Rename or redefine; a new definition becomes a new version (old versions are kept)."""
    return service.update_segment(ctx, user, segment_id, body.name, body.definition, body.description).as_dict()


@router.delete("/{segment_id}", status_code=204)
def delete(segment_id: str, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> Response:
    """Archive a segment (versions and membership history stay)."""
    service.delete_segment(ctx, user, segment_id)
    return Response(status_code=204)


@router.get("/{segment_id}/versions")
def versions(segment_id: str, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """Every version of the definition."""
    return {"items": service.versions(ctx, user, segment_id)}


@router.post("/{segment_id}/refresh")
def refresh(segment_id: str, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """Recompute the members now: how many entered and exited."""
    service.require_editor(user)
    service.get_segment(ctx, user, segment_id)
    return service.refresh_segment(ctx, user.brand_id, segment_id)


@router.get("/{segment_id}/members")
def members(
    segment_id: str,
    page: int = 1,
    page_size: int = 50,
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """A page of the current members (a guide: only their own customers; names and phones masked)."""
    found = service.members(ctx, user, segment_id, page, page_size)
    return {**found, "items": mask_records(found["items"])}


@router.get("/{segment_id}/export")
def export(
    segment_id: str,
    format: str = "csv",
    pii: Literal["hashed", "clear"] = Query("hashed", description="phones / emails SHA-256 hashed, or clear (admins)"),
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> Response:
    """The current members as CSV, XLSX or Parquet (phones and emails hashed unless an admin asks for clear text)."""
    data, media, filename = service.export_members(ctx, user, segment_id, format, clear_pii=pii == "clear")
    detail = {"format": format, "pii": pii, "bytes": len(data)}
    audit.record(ctx, user.brand_id, user, "export", f"segment:{segment_id}", detail)
    return Response(data, media_type=media, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.post("/{segment_id}/lookalike")
def lookalike(
    segment_id: str, body: LookalikeBody, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Customers most like the segment's members, with the method's lift on a held-out part of the seed."""
    result = lookalike_service.lookalike(
        ctx, user, segment_id, top=body.top, holdout=body.holdout, seed=body.seed, as_of=body.as_of
    )
    return result.as_dict()


@router.get("/{segment_id}/lookalike/export")
def lookalike_export(
    segment_id: str,
    format: str = "csv",
    top: int = 1000,
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> Response:
    """The top lookalike customers with their scores as CSV, XLSX or Parquet."""
    data, media, filename = lookalike_service.export_lookalike(ctx, user, segment_id, format, top)
    audit.record(ctx, user.brand_id, user, "export", f"lookalike:{segment_id}", {"format": format, "top": top})
    return Response(data, media_type=media, headers={"Content-Disposition": f'attachment; filename="{filename}"'})
