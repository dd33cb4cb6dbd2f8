"""Temporary media: ``media/upload?type=image|file`` (multipart/form-data, file part ``media``; more than 5 bytes;
images JPG/PNG ≤ 10 MB, files ≤ 20 MB) → ``{"type", "media_id", "created_at"}``; the media lives 3 days
(``server.media``, read by tests and by the moments/welcome handlers that take a media_id)."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from tests.wecom_server.codes import need

if TYPE_CHECKING:
    from tests.wecom_server.server import WeComServer

MAX = {"image": 10 * 1024 * 1024, "file": 20 * 1024 * 1024, "voice": 2 * 1024 * 1024, "video": 10 * 1024 * 1024}
MEDIA_TTL = 3 * 86400


def store(srv: WeComServer) -> dict[str, dict[str, Any]]:
    found = getattr(srv, "media", None)
    if found is None:
        found = {}
        srv.media = found  # type: ignore[attr-defined]
    return found


def valid_media(srv: WeComServer, media_id: str) -> bool:
    got = store(srv).get(media_id)
    return got is not None and srv.now() < got["created_at"] + MEDIA_TTL


def upload(srv: WeComServer, q: dict[str, Any]) -> dict[str, Any]:
    kind = str(q.get("type") or "")
    need(kind in MAX, 40004, f"invalid media type {kind!r}")
    part = (q.get("files") or {}).get("media")
    need(part is not None, 41005, "media data missing")
    filename, content, ctype = part
    need(len(content) > 5 and len(content) <= MAX[kind], 40006, f"{len(content)} bytes")
    if kind == "image":
        need(content[:3] == b"\xff\xd8\xff" or content[:8] == b"\x89PNG\r\n\x1a\n", 40005, "image must be JPG/PNG")
    media_id = "3" + secrets.token_urlsafe(40)
    now = int(srv.now())
    store(srv)[media_id] = {"type": kind, "filename": filename, "content": content, "ctype": ctype, "created_at": now}
    return {"type": kind, "media_id": media_id, "created_at": str(now)}
