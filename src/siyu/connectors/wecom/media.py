"""WeCom temporary media (临时素材): ``/cgi-bin/media/upload?type=image|file`` (multipart, field ``media``) →
``media_id``, valid 3 days and shared by every app of the company. Limits checked before calling: more than 5
bytes; images JPG/PNG up to 10 MB; files up to 20 MB."""

from __future__ import annotations

from dataclasses import dataclass

from siyu.connectors.wecom.transport import Transport
from siyu.errors import SiyuError

MEDIA_TTL_SECONDS = 3 * 86400
MAX_BYTES = {"image": 10 * 1024 * 1024, "file": 20 * 1024 * 1024}
IMAGE_TYPES = {"image/jpeg": (b"\xff\xd8\xff",), "image/png": (b"\x89PNG\r\n\x1a\n",)}
UPLOAD_PATH = "/cgi-bin/media/upload"


@dataclass(frozen=True)
class Media:
    media_id: str
    created_at: int


def check_media(kind: str, filename: str, content: bytes, content_type: str) -> str:
    """The content type to send; SiyuError naming the field when WeCom would refuse the file."""
    if kind not in MAX_BYTES:
        raise SiyuError(f"only image and file items carry an uploaded file (not {kind})", "kind")
    if not filename or len(filename) > 100 or "/" in filename or "\\" in filename:
        raise SiyuError("file name must be 1..100 characters without slashes", "file_name")
    if len(content) <= 5:
        raise SiyuError("the file is empty (WeCom needs more than 5 bytes)", "file")
    if len(content) > MAX_BYTES[kind]:
        raise SiyuError(f"the file has {len(content)} bytes; WeCom takes {kind}s up to {MAX_BYTES[kind]}", "file")
    if kind == "image":
        found = next((t for t, magic in IMAGE_TYPES.items() if content.startswith(magic)), None)
        if found is None:
            raise SiyuError("an image must be a JPG or PNG file", "file")
        return found
    return content_type or "application/octet-stream"


def upload(t: Transport, kind: str, filename: str, content: bytes, content_type: str = "") -> Media:
    """Upload one file as temporary media (checked first)."""
    ctype = check_media(kind, filename, content, content_type)
    out = t.call("media/upload", query={"type": kind}, path=UPLOAD_PATH, files={"media": (filename, content, ctype)})
    return Media(str(out["media_id"]), int(out.get("created_at") or 0))
