"""File imports over HTTP: upload (queued on Huey), preview, job status, job list, error report download."""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import FileResponse

from siyu.api.auth import current_user
from siyu.api.deps import get_ctx
from siyu.domain.models import Role
from siyu.services import imports as service
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import Forbidden, NotFound, SiyuError

router = APIRouter(prefix="/api/imports", tags=["imports"])

DEFAULT_MAX_UPLOAD_MB = 200
_CHUNK = 1 << 20


class PayloadTooLarge(SiyuError):
    status_code = 413


def max_upload_bytes() -> int:
    """Upload size limit (``SIYU_MAX_UPLOAD_MB``, default 200 MB)."""
    return int(float(os.environ.get("SIYU_MAX_UPLOAD_MB", DEFAULT_MAX_UPLOAD_MB)) * 1024 * 1024)


def _operator(user: User = Depends(current_user)) -> User:
    if user.role not in (Role.ADMIN, Role.OPERATOR):
        raise Forbidden("imports need an admin or operator account")
    return user


def _safe_name(name: str | None) -> str:
    base = Path(name or "upload.csv").name
    base = re.sub(r"[^\w.\-\u4e00-\u9fff]+", "_", base).strip("._") or "upload.csv"
    return base[:150]


async def _save_upload(ctx: Context, request: Request, upload: UploadFile) -> Path:
    """Stream an upload under ``<data_dir>/imports/uploads/<id>/``; 413 past the size limit."""
    limit = max_upload_bytes()
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise PayloadTooLarge(f"the upload is larger than {limit // (1024 * 1024)} MB; split the file", field="file")
    target_dir = ctx.settings.imports_dir / "uploads" / uuid.uuid4().hex[:16]
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / _safe_name(upload.filename)
    size = 0
    with target.open("wb") as out:
        while block := await upload.read(_CHUNK):
            size += len(block)
            if size > limit:
                out.close()
                shutil.rmtree(target_dir, ignore_errors=True)
                raise PayloadTooLarge(
                    f"the upload is larger than {limit // (1024 * 1024)} MB; split the file", field="file"
                )
            out.write(block)
    return target


def _parse_mapping(mapping: str | None) -> dict[str, str | None] | None:
    if not mapping:
        return None
    try:
        value = json.loads(mapping)
    except json.JSONDecodeError as exc:
        raise SiyuError(f'mapping is not JSON ({exc}); send {{"field": "column"}}', field="mapping") from exc
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise SiyuError('mapping must be a JSON object {"field": "column"}', field="mapping")
    return {k: (None if v is None else str(v)) for k, v in value.items()}


def _own_job(ctx: Context, user: User, job_id: str) -> service.ImportJobView:
    job = service.get_job(ctx, job_id)
    if job.brand_id != user.brand_id:
        raise NotFound(f"import job {job_id!r} does not exist")
    return job


@router.post("", status_code=202)
async def upload(
    request: Request,
    file: UploadFile = File(...),
    kind: str = Form(...),
    mapping: str | None = Form(None),
    user: User = Depends(_operator),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """Upload a file and queue its import on Huey; poll ``GET /api/imports/{job_id}``."""
    parsed = _parse_mapping(mapping)
    path = await _save_upload(ctx, request, file)
    job_id = service.submit_import(ctx, user.brand_id, kind, path, parsed, created_by=user.username)
    return {"job_id": job_id, "status": "pending", "url": f"/api/imports/{job_id}"}


@router.post("/preview")
async def preview(
    request: Request,
    file: UploadFile = File(...),
    kind: str = Form(...),
    user: User = Depends(_operator),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """Headers, first rows and the guessed column mapping of an uploaded file."""
    path = await _save_upload(ctx, request, file)
    try:
        return service.preview(path, kind)
    finally:
        shutil.rmtree(path.parent, ignore_errors=True)


@router.get("")
def jobs(limit: int = 100, user: User = Depends(_operator), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """The brand's import jobs, newest first."""
    return {"items": [j.to_dict() for j in service.list_jobs(ctx, user.brand_id, limit=min(limit, 500))]}


@router.get("/{job_id}")
def job(job_id: str, user: User = Depends(_operator), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """One job's status and counters."""
    return _own_job(ctx, user, job_id).to_dict()


@router.get("/{job_id}/errors", response_model=None)
def errors(job_id: str, user: User = Depends(_operator), ctx: Context = Depends(get_ctx)) -> FileResponse:
    """The job's row-level error report (CSV: row, column, value, reason, fix)."""
    found = _own_job(ctx, user, job_id)
    if not found.error_report or not Path(found.error_report).is_file():
        raise NotFound(f"import job {job_id!r} has no error report (no row failed)")
    return FileResponse(found.error_report, media_type="text/csv; charset=utf-8", filename=f"{job_id}.errors.csv")
