"""Scripts library over HTTP (/api/scripts): operators keep folders and items, guides search and count uses;
and the sidebar's settings (/api/sidebar: the WeCom app's agentid, signed links that open it for a guide, a
customer group's summary, WeCom's trusted-domain verification file)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from pydantic import BaseModel, Field

from siyu.api.auth import current_user
from siyu.api.deps import get_ctx
from siyu.api.validation import MAX_ID, RowId
from siyu.domain.models import Role
from siyu.services import customers, scripts
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import Forbidden, SiyuError
from siyu.services.sidebar import access, verify_file, view
from siyu.services.sidebar.config import SDK_URLS, SidebarConfig, get_sidebar_config, set_sidebar_config

router = APIRouter(prefix="/api/scripts", tags=["scripts"])
sidebar_router = APIRouter(prefix="/api/sidebar", tags=["sidebar"])


class FolderBody(BaseModel):
    name: str = Field(max_length=200)
    parent_id: int = Field(0, ge=0, le=MAX_ID)
    sort: int = 0


class ScriptBody(BaseModel):
    kind: str = Field(max_length=16)
    title: str = Field(max_length=500)
    body: str = Field(default="", max_length=10_000)
    payload: dict[str, Any] = Field(default_factory=dict)
    folder_id: int = Field(0, ge=0, le=MAX_ID)
    keywords: str = Field(default="", max_length=1000)


class ScriptPatch(BaseModel):
    kind: str | None = Field(default=None, max_length=16)
    title: str | None = Field(default=None, max_length=500)
    body: str | None = Field(default=None, max_length=10_000)
    payload: dict[str, Any] | None = None
    folder_id: int | None = Field(None, ge=0, le=MAX_ID)
    keywords: str | None = Field(default=None, max_length=1000)


class UseBody(BaseModel):
    customer_id: str = Field(default="", max_length=128)
    channel: str = "api"


@router.get("/folders")
def folders(user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> list[dict[str, Any]]:
    return scripts.list_folders(ctx, user)


@router.post("/folders", status_code=201)
def create_folder(
    body: FolderBody, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    return scripts.create_folder(ctx, user, body.name, body.parent_id, body.sort)


@router.patch("/folders/{folder_id}")
def rename_folder(
    folder_id: RowId, body: FolderBody, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    return scripts.rename_folder(ctx, user, folder_id, body.name)


@router.delete("/folders/{folder_id}")
def delete_folder(
    folder_id: RowId, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)
) -> dict[str, int]:
    return scripts.delete_folder(ctx, user, folder_id)


@router.get("")
def search(
    q: str = "",
    folder_id: int | None = Query(None, le=MAX_ID),
    kind: str | None = None,
    sort: str = "popular",
    page: int = 1,
    page_size: int = 50,
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """Search by words in title / text / keywords, in a folder (0 = unfiled) or of a kind; paged."""
    return scripts.search_scripts(ctx, user, q, folder_id, kind, sort, page, page_size)


@router.post("", status_code=201)
def create(body: ScriptBody, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    return scripts.create_script(
        ctx, user, body.kind, body.title, body.body, body.payload, body.folder_id, body.keywords
    )


MAX_UPLOAD = 20 * 1024 * 1024


async def _read(upload: UploadFile) -> tuple[str, bytes, str]:
    content = await upload.read(MAX_UPLOAD + 1)
    if len(content) > MAX_UPLOAD:
        raise SiyuError(f"the file is larger than {MAX_UPLOAD} bytes (WeCom's limit for files)", "file")
    return (upload.filename or "file", content, upload.content_type or "")


@router.post("/upload", status_code=201)
async def create_with_file(
    kind: str = Form(...),
    title: str = Form(...),
    body: str = Form(""),
    folder_id: int = Form(0),
    keywords: str = Form(""),
    file: UploadFile = File(...),
    user: User = Depends(current_user),
    ctx: Context = Depends(get_ctx),
) -> dict[str, Any]:
    """A new image / file item with its file (multipart; sent through WeCom temporary media)."""
    got = await _read(file)
    return scripts.create_script(ctx, user, kind, title, body, None, folder_id, keywords, file=got)


@router.post("/{script_id}/file")
async def attach(
    script_id: RowId, file: UploadFile = File(...), user: User = Depends(current_user), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Replace the file of an image / file item."""
    name, content, ctype = await _read(file)
    return scripts.attach_file(ctx, user, script_id, name, content, ctype)


@router.get("/{script_id}")
def show(script_id: RowId, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """An item with its usage: uses per guide and the sidebar's sends (prepared, sent, cancelled, ...)."""
    return {**scripts.get_script(ctx, user, script_id), "usage": scripts.usage(ctx, user, script_id)}


@router.patch("/{script_id}")
def update(
    script_id: RowId, body: ScriptPatch, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    return scripts.update_script(ctx, user, script_id, **body.model_dump(exclude_none=True))


@router.delete("/{script_id}", status_code=204)
def delete(script_id: RowId, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> None:
    scripts.delete_script(ctx, user, script_id)


@router.post("/{script_id}/uses")
def use(
    script_id: RowId, body: UseBody, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Count a use (e.g. copied from another tool); the customer, when given, must be visible to the user."""
    cid = customers.resolve_customer(ctx, user, body.customer_id) if body.customer_id else ""
    return {"use_count": scripts.record_use(ctx, user, script_id, cid, body.channel)}


# -- sidebar settings ------------------------------------------------------------------------------------------
class SidebarBody(BaseModel):
    agent_id: str = Field(max_length=20)
    agent_secret: str = Field(default="", max_length=200)
    oauth_base: str = Field(default="https://open.weixin.qq.com", max_length=200)
    sdk_urls: list[str] = Field(default_factory=lambda: list(SDK_URLS), max_length=4)


class LinkBody(BaseModel):
    guide_id: str = Field(max_length=64)
    customer_id: str = Field(default="", max_length=128)


def _admin(user: User) -> None:
    if user.role != Role.ADMIN:
        raise Forbidden("only admins configure the sidebar", "role")


@sidebar_router.get("/config")
def sidebar_config(user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    _admin(user)
    return get_sidebar_config(ctx, user.brand_id).public()


@sidebar_router.put("/config")
def put_sidebar_config(
    body: SidebarBody, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    _admin(user)
    cfg = SidebarConfig(body.agent_id, body.agent_secret, body.oauth_base, list(body.sdk_urls))
    return set_sidebar_config(ctx, user.brand_id, cfg).public()


@sidebar_router.post("/links")
def make_link(body: LinkBody, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, str]:
    """A signed sidebar link (7 days) for a guide, optionally on one of their customers (a guide: only for
    themselves)."""
    if user.role == Role.GUIDE and body.guide_id != user.guide_id:
        raise Forbidden("a guide can make links only for themselves", "guide_id")
    if body.customer_id:
        as_guide = User(0, user.brand_id, "link", "link", Role.GUIDE, body.guide_id, "zh")
        customers.resolve_customer(ctx, as_guide, body.customer_id)
    token = access.link_token(ctx, user.brand_id, body.guide_id, body.customer_id)
    return {"path": f"/sidebar/{user.brand_id}/link?t={token}"}


@sidebar_router.get("/groups/{chat_id}")
def group(chat_id: str, user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """A customer group as the sidebar shows it (owner, members, our customers, lifecycle mix): a guide only the
    groups they own (403 otherwise), operators and admins every group of the brand."""
    return view.group_view(ctx, user, chat_id[:128])


@sidebar_router.get("/verify-file")
def get_verify_file(user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, Any]:
    """The brand's WeCom trusted-domain verification file (``{"file": null}`` when none is set)."""
    _admin(user)
    return {"file": verify_file.get_file(ctx, user.brand_id)}


@sidebar_router.put("/verify-file")
async def put_verify_file(
    file: UploadFile = File(...), user: User = Depends(current_user), ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    """Upload WeCom's ``WW_verify_....txt`` (multipart, its own file name); served at ``/<name>`` from now on."""
    _admin(user)
    content = await file.read(verify_file.MAX_BYTES + 1)
    return verify_file.set_file(ctx, user.brand_id, file.filename or "", content, user)


@sidebar_router.delete("/verify-file")
def delete_verify_file(user: User = Depends(current_user), ctx: Context = Depends(get_ctx)) -> dict[str, bool]:
    """Stop serving the brand's verification file."""
    _admin(user)
    return {"deleted": verify_file.clear_file(ctx, user.brand_id, user)}
