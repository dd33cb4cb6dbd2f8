"""The scripts library (话术库 / 素材库): folders and items kept by operators, searched and used by guides.

Admins and operators create, edit and delete; guides list, search and use. A use adds one to the item's
``use_count`` (a single UPDATE, so concurrent uses are all counted) and records who sent it to whom; a send from the
sidebar counts only once WeCom confirms it (``siyu.services.sidebar.sends``). Items are validated by
``siyu.domain.scripts``.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, case, func, or_, select, update

from siyu.connectors.wecom import media as wecom_media
from siyu.connectors.wecom.media import check_media
from siyu.connectors.wecom.transport import Transport
from siyu.domain.models import Role
from siyu.domain.scripts import KINDS, ScriptInput, validate
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import Conflict, Forbidden, NotFound, SiyuError
from siyu.stores.state.models import utcnow
from siyu.stores.state.script_models import ScriptFolderRow, ScriptRow, ScriptSendRow, ScriptUseRow

MAX_PAGE_SIZE = 200
MAX_QUERY = 100
MAX_FOLDERS = 500
MAX_FOLDER_NAME = 60
SORTS = ("popular", "recent", "title")
CHANNELS = ("sidebar", "copy", "api")


def _editor(user: User) -> None:
    if user.role == Role.GUIDE:
        raise Forbidden("guides use the scripts library; operators keep it", "role")


def folder_dict(r: ScriptFolderRow) -> dict[str, Any]:
    return {"id": r.id, "name": r.name, "parent_id": r.parent_id, "sort": r.sort}


def script_dict(r: ScriptRow) -> dict[str, Any]:
    return {
        "id": r.id,
        "folder_id": r.folder_id,
        "kind": r.kind,
        "title": r.title,
        "body": r.body,
        "payload": dict(r.payload or {}),
        "keywords": r.keywords,
        "has_file": bool(r.file_key),
        "use_count": r.use_count,
        "last_used_at": r.last_used_at.isoformat() if r.last_used_at else None,
        "created_by": r.created_by,
        "updated_at": r.updated_at.isoformat(),
    }


# -- folders ---------------------------------------------------------------------------------------------------
def list_folders(ctx: Context, user: User) -> list[dict[str, Any]]:
    """The brand's folders with how many active items each holds."""
    F, S = ScriptFolderRow, ScriptRow
    with ctx.sessions() as s:
        counts = dict(
            s.execute(
                select(S.folder_id, func.count())
                .where(S.brand_id == user.brand_id, S.status == "active")
                .group_by(S.folder_id)
            ).all()
        )
        rows = s.scalars(select(F).where(F.brand_id == user.brand_id).order_by(F.parent_id, F.sort, F.name)).all()
    return [{**folder_dict(r), "items": int(counts.get(r.id, 0))} for r in rows]


def _folder_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > MAX_FOLDER_NAME:
        raise SiyuError(f"folder name must be 1..{MAX_FOLDER_NAME} characters", "name")
    return name


def _check_folder(s: Any, brand_id: str, folder_id: int, fld: str = "folder_id") -> None:
    if folder_id:
        row = s.get(ScriptFolderRow, folder_id)
        if row is None or row.brand_id != brand_id:
            raise NotFound(f"folder {folder_id} does not exist; list folders with GET /api/scripts/folders", fld)


def create_folder(ctx: Context, user: User, name: str, parent_id: int = 0, sort: int = 0) -> dict[str, Any]:
    """A new folder (top level, or inside ``parent_id``; one level of nesting)."""
    _editor(user)
    name = _folder_name(name)
    F = ScriptFolderRow
    with ctx.sessions() as s, s.begin():
        if parent_id:
            _check_folder(s, user.brand_id, parent_id, "parent_id")
            if s.get(F, parent_id).parent_id:  # type: ignore[union-attr]
                raise SiyuError("folders nest one level deep; choose a top-level parent", "parent_id")
        n = s.scalar(select(func.count()).select_from(F).where(F.brand_id == user.brand_id)) or 0
        if n >= MAX_FOLDERS:
            raise SiyuError(f"the brand already has {n} folders (at most {MAX_FOLDERS})", "name")
        clash = s.scalar(select(F.id).where(F.brand_id == user.brand_id, F.parent_id == parent_id, F.name == name))
        if clash is not None:
            raise Conflict(f"folder {name!r} already exists here", "name")
        row = F(brand_id=user.brand_id, name=name, parent_id=parent_id, sort=sort)
        s.add(row)
        s.flush()
        return folder_dict(row)


def rename_folder(ctx: Context, user: User, folder_id: int, name: str) -> dict[str, Any]:
    _editor(user)
    name = _folder_name(name)
    with ctx.sessions() as s, s.begin():
        _check_folder(s, user.brand_id, folder_id)
        row = s.get(ScriptFolderRow, folder_id)
        assert row is not None
        row.name = name
        return folder_dict(row)


def delete_folder(ctx: Context, user: User, folder_id: int) -> dict[str, int]:
    """Delete a folder; its items and sub-folders move up to its parent. Returns how many items moved."""
    _editor(user)
    with ctx.sessions() as s, s.begin():
        _check_folder(s, user.brand_id, folder_id)
        row = s.get(ScriptFolderRow, folder_id)
        assert row is not None
        moved = s.execute(  # type: ignore[attr-defined]
            update(ScriptRow)
            .where(ScriptRow.brand_id == user.brand_id, ScriptRow.folder_id == folder_id)
            .values(folder_id=row.parent_id)
        ).rowcount
        s.execute(
            update(ScriptFolderRow)
            .where(ScriptFolderRow.brand_id == user.brand_id, ScriptFolderRow.parent_id == folder_id)
            .values(parent_id=row.parent_id)
        )
        s.delete(row)
    return {"moved": int(moved or 0)}


# -- items -----------------------------------------------------------------------------------------------------
def active_row(s: Any, user: User, script_id: int) -> ScriptRow:
    """An active item of the user's brand in session ``s`` (NotFound otherwise)."""
    row = s.get(ScriptRow, script_id)
    if row is None or row.brand_id != user.brand_id or row.status != "active":
        raise NotFound(f"script {script_id} does not exist", "script_id")
    return row  # type: ignore[no-any-return]


def get_script(ctx: Context, user: User, script_id: int) -> dict[str, Any]:
    """One active item of the user's brand (NotFound otherwise)."""
    with ctx.sessions() as s:
        return script_dict(active_row(s, user, script_id))


def create_script(
    ctx: Context,
    user: User,
    kind: str,
    title: str,
    body: str = "",
    payload: dict[str, Any] | None = None,
    folder_id: int = 0,
    keywords: str = "",
    file: tuple[str, bytes, str] | None = None,
) -> dict[str, Any]:
    """A new item (validated; SiyuError naming the field); ``file`` = (name, bytes, content type) uploads the
    image / file it sends."""
    _editor(user)
    if file is not None:
        check_media(kind, *file)
        if kind == "file":
            payload = {"file_name": file[0], **(payload or {})}
    item = validate(ScriptInput(kind, title, body, payload, keywords), has_file=file is not None)
    key = _store_file(ctx, user.brand_id, *file) if file is not None else ""
    with ctx.sessions() as s, s.begin():
        _check_folder(s, user.brand_id, folder_id)
        row = ScriptRow(
            brand_id=user.brand_id,
            folder_id=folder_id,
            kind=item.kind,
            title=item.title,
            body=item.body,
            payload=item.payload or {},
            keywords=item.keywords,
            file_key=key,
            created_by=user.username,
        )
        s.add(row)
        s.flush()
        return script_dict(row)


def update_script(ctx: Context, user: User, script_id: int, **changes: Any) -> dict[str, Any]:
    """Change any of kind, title, body, payload, folder_id, keywords (the result is validated as a whole)."""
    _editor(user)
    allowed = {"kind", "title", "body", "payload", "folder_id", "keywords"}
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise SiyuError(f"{unknown[0]} cannot be changed; change one of {', '.join(sorted(allowed))}", unknown[0])
    with ctx.sessions() as s, s.begin():
        row = active_row(s, user, script_id)
        merged = {
            "kind": row.kind,
            "title": row.title,
            "body": row.body,
            "payload": row.payload,
            "keywords": row.keywords,
            **{k: v for k, v in changes.items() if k != "folder_id" and v is not None},
        }
        item = validate(ScriptInput(**merged), has_file=bool(row.file_key))
        if changes.get("folder_id") is not None:
            _check_folder(s, user.brand_id, int(changes["folder_id"]))
            row.folder_id = int(changes["folder_id"])
        row.kind, row.title, row.body, row.payload, row.keywords = (
            item.kind,
            item.title,
            item.body,
            item.payload or {},
            item.keywords,
        )
        row.updated_at = utcnow()
        return script_dict(row)


def delete_script(ctx: Context, user: User, script_id: int) -> None:
    """Remove an item from the library (its use history stays)."""
    _editor(user)
    with ctx.sessions() as s, s.begin():
        row = active_row(s, user, script_id)
        row.status = "deleted"
        row.updated_at = utcnow()


def search_scripts(
    ctx: Context,
    user: User,
    q: str = "",
    folder_id: int | None = None,
    kind: str | None = None,
    sort: str = "popular",
    page: int = 1,
    page_size: int = 50,
) -> dict[str, Any]:
    """Items whose title, text or keywords contain every word of ``q`` (case-insensitive), in a folder (with its
    sub-folders) or of a kind; ``sort`` popular (most used first) | recent | title."""
    q = (q or "").strip()
    if len(q) > MAX_QUERY:
        raise SiyuError(f"q has {len(q)} characters; at most {MAX_QUERY}", "q")
    if kind and kind not in KINDS:
        raise SiyuError(f"kind {kind!r} is unknown; use one of {', '.join(KINDS)}", "kind")
    if sort not in SORTS:
        raise SiyuError(f"sort must be one of {', '.join(SORTS)}", "sort")
    if page < 1:
        raise SiyuError(f"page must be 1 or more (got {page})", "page")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise SiyuError(f"page_size must be between 1 and {MAX_PAGE_SIZE} (got {page_size})", "page_size")
    S = ScriptRow
    stmt = select(S).where(S.brand_id == user.brand_id, S.status == "active")
    for word in q.lower().split():
        like = f"%{word.replace('%', '').replace('_', '')}%"
        stmt = stmt.where(
            or_(func.lower(S.title).like(like), func.lower(S.body).like(like), func.lower(S.keywords).like(like))
        )
    if kind:
        stmt = stmt.where(S.kind == kind)
    if folder_id:  # the folder and its sub-folders
        subs = select(ScriptFolderRow.id).where(
            ScriptFolderRow.brand_id == user.brand_id, ScriptFolderRow.parent_id == folder_id
        )
        stmt = stmt.where(or_(S.folder_id == folder_id, S.folder_id.in_(subs)))
    elif folder_id == 0:  # items outside any folder
        stmt = stmt.where(S.folder_id == 0)
    with ctx.sessions() as s:
        orders: dict[str, list[Any]] = {
            "popular": [S.use_count.desc(), S.id],
            "recent": [S.updated_at.desc(), S.id.desc()],
            "title": [S.title, S.id],
        }
        order = orders[sort]
        total = int(s.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
        rows = s.scalars(stmt.order_by(*order).limit(page_size).offset((page - 1) * page_size)).all()
    return {"items": [script_dict(r) for r in rows], "total": total, "page": page, "page_size": page_size}


def record_use(
    ctx: Context,
    user: User,
    script_id: int,
    customer_id: str = "",
    channel: str = "sidebar",
    at: datetime | None = None,
    chat_id: str = "",
) -> int:
    """Count one use of an item by ``user`` (for ``customer_id``, or into the group chat ``chat_id``); returns the
    item's new use count. The caller checks the customer / group is the user's (the sidebar does)."""
    if channel not in CHANNELS:
        raise SiyuError(f"channel must be one of {', '.join(CHANNELS)}", "channel")
    with ctx.sessions() as s, s.begin():
        active_row(s, user, script_id)
        return count_use(s, user, script_id, customer_id, chat_id, channel, at or utcnow())


def count_use(s: Any, user: User, script_id: int, customer_id: str, chat_id: str, channel: str, when: datetime) -> int:
    """Inside the caller's transaction: one more use (a single UPDATE, so concurrent uses all count) and its
    ``script_uses`` row; returns the new use count."""
    s.execute(
        update(ScriptRow).where(ScriptRow.id == script_id).values(use_count=ScriptRow.use_count + 1, last_used_at=when)
    )
    s.add(
        ScriptUseRow(
            brand_id=user.brand_id,
            script_id=script_id,
            guide_id=user.guide_id or "",
            customer_id=customer_id,
            chat_id=chat_id,
            channel=channel,
            used_at=when,
        )
    )
    s.flush()
    return int(s.scalar(select(ScriptRow.use_count).where(ScriptRow.id == script_id)) or 0)


def usage(ctx: Context, user: User, script_id: int) -> dict[str, Any]:
    """An item's use count, its uses per guide (a guide sees only their own uses) and its sidebar sends by
    outcome (``send_counts``)."""
    U = ScriptUseRow
    with ctx.sessions() as s:
        row = active_row(s, user, script_id)
        stmt = select(U.guide_id, func.count()).where(U.script_id == script_id).group_by(U.guide_id)
        if user.role == Role.GUIDE:
            stmt = stmt.where(U.guide_id == (user.guide_id or ""))
        per = {g: int(n) for g, n in s.execute(stmt.order_by(U.guide_id)).all()}
        out = {"id": row.id, "use_count": row.use_count, "by_guide": per}
    return {**out, "sends": send_counts(ctx, user, [script_id]).get(script_id, dict(EMPTY_SENDS))}


SEND_STATES = ("sent", "cancelled", "failed", "expired", "pending")
EMPTY_SENDS = {"prepared": 0, **dict.fromkeys(SEND_STATES, 0)}


def send_counts(
    ctx: Context, user: User, script_ids: list[int] | None = None, now: datetime | None = None
) -> dict[int, dict[str, int]]:
    """Sends the sidebar prepared per item (all of the brand's, or of ``script_ids``): ``prepared`` in all, then
    by outcome — sent (WeCom confirmed: these are counted as uses), cancelled, failed, expired (never confirmed
    in time) and pending (may still be confirmed)."""
    at = now or utcnow()
    S = ScriptSendRow
    state = case(
        (and_(S.status == "prepared", S.expires_at <= at), "expired"),
        (S.status == "prepared", "pending"),
        else_=S.status,
    )
    stmt = select(S.script_id, state, func.count()).where(S.brand_id == user.brand_id)
    if script_ids is not None:
        stmt = stmt.where(S.script_id.in_(script_ids))
    out: dict[int, dict[str, int]] = {}
    with ctx.sessions() as s:
        for sid, st, n in s.execute(stmt.group_by(S.script_id, state)).all():
            row = out.setdefault(int(sid), dict(EMPTY_SENDS))
            row[str(st)] = row.get(str(st), 0) + int(n)
            row["prepared"] += int(n)
    return out


# -- uploaded files and their WeCom temporary media --------------------------------------------------------------
MEDIA_MARGIN = timedelta(hours=1)  # upload again when the media has less than this left
_EXT = {"image/jpeg": ".jpg", "image/png": ".png"}


def _files_dir(ctx: Context) -> Path:
    return Path(ctx.settings.data_dir) / "scripts"


def _store_file(ctx: Context, brand_id: str, name: str, content: bytes, content_type: str) -> str:
    """Keep the bytes under ``<data>/scripts/<brand>/<sha256><ext>``; returns that key."""
    ext = _EXT.get(content_type) or Path(name).suffix.lower()[:10]
    key = f"{brand_id}/{hashlib.sha256(content).hexdigest()}{ext}"
    path = _files_dir(ctx) / key
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(content)
        tmp.replace(path)
    return key


def attach_file(
    ctx: Context, user: User, script_id: int, name: str, content: bytes, content_type: str
) -> dict[str, Any]:
    """Upload (replace) the file an image / file item sends; its cached WeCom media is dropped."""
    _editor(user)
    with ctx.sessions() as s, s.begin():
        row = active_row(s, user, script_id)
        check_media(row.kind, name, content, content_type)
        row.file_key = _store_file(ctx, user.brand_id, name, content, content_type)
        if row.kind == "file":
            row.payload = {**(row.payload or {}), "file_name": name}
        row.media_id, row.media_expires_at, row.updated_at = "", None, utcnow()
        return script_dict(row)


def media_for(ctx: Context, user: User, script_id: int, transport: Transport, now: datetime | None = None) -> str:
    """The WeCom media_id to send an item by: the operator's ``payload.media_id``, else the uploaded file's
    temporary media — uploaded once and reused until an hour before its 3 days end. "" when neither."""
    at = now or utcnow()
    with ctx.sessions() as s, s.begin():
        row = active_row(s, user, script_id)
        given = str((row.payload or {}).get("media_id") or "")
        if given or not row.file_key:
            return given
        if row.media_id and row.media_expires_at and row.media_expires_at - MEDIA_MARGIN > at:
            return row.media_id
        path = _files_dir(ctx) / row.file_key
        name = str((row.payload or {}).get("file_name") or Path(row.file_key).name)
        ctype = next((t for t, e in _EXT.items() if row.file_key.endswith(e)), "application/octet-stream")
        got = wecom_media.upload(transport, row.kind, name, path.read_bytes(), ctype)
        created = datetime.fromtimestamp(got.created_at, UTC).replace(tzinfo=None) if got.created_at else at
        row.media_id = got.media_id
        row.media_expires_at = min(created, at) + timedelta(seconds=wecom_media.MEDIA_TTL_SECONDS)
        return row.media_id
