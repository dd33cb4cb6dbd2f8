"""Scripts library items (话术 / 素材): validation naming the field, placeholders, and the argument of the WeCom
JS-SDK ``sendChatMessage`` each kind becomes (pure, no I/O).

Kinds and their ``payload`` fields:

- ``text``        — ``body`` is the message (≤ 2,000 characters); ``{name}`` and ``{guide}`` are replaced by the
  customer's and the guide's names.
- ``image``       — ``media_id`` (WeCom temporary media) or ``image_url``.
- ``link``        — ``url`` (http/https), optional ``image_url``; ``body`` is the card's description.
- ``miniprogram`` — ``appid``, ``page`` (path with ``.html`` as WeCom requires), ``image_url`` (cover) or
  ``media_id``.
- ``file``        — ``media_id`` or ``url``, ``file_name``.

WeCom's ``sendChatMessage`` sends image and file messages by ``mediaid`` only: an uploaded file is sent through
WeCom temporary media (``siyu.services.scripts.media_for``); an item that has only a URL is sent as a link card
(``news``) to that URL instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from siyu.errors import SiyuError

KINDS: tuple[str, ...] = ("text", "image", "link", "miniprogram", "file")
MAX_TITLE = 100
MAX_BODY = 2000
MAX_KEYWORDS = 200
MAX_URL = 1000
PAYLOAD_FIELDS: dict[str, tuple[str, ...]] = {
    "text": (),
    "image": ("media_id", "image_url"),
    "link": ("url", "image_url"),
    "miniprogram": ("appid", "page", "image_url", "media_id"),
    "file": ("media_id", "url", "file_name"),
}


@dataclass(frozen=True)
class ScriptInput:
    kind: str
    title: str
    body: str = ""
    payload: dict[str, Any] | None = None
    keywords: str = ""


def _url(value: Any, fld: str, required: bool) -> str:
    v = str(value or "").strip()
    if not v:
        if required:
            raise SiyuError(f"{fld} is required for this kind; give an http(s) URL", fld)
        return ""
    if not v.startswith(("http://", "https://")) or len(v) > MAX_URL or any(c.isspace() for c in v):
        raise SiyuError(f"{fld} must be an http(s) URL of at most {MAX_URL} characters without spaces", fld)
    return v


def validate(item: ScriptInput, has_file: bool = False) -> ScriptInput:
    """A clean copy of ``item``; SiyuError naming the field (``payload.url`` ...) when it cannot be sent.
    ``has_file``: an image / file item with an uploaded file needs no URL or media_id."""
    if item.kind not in KINDS:
        raise SiyuError(f"kind {item.kind!r} is unknown; use one of {', '.join(KINDS)}", "kind")
    title = (item.title or "").strip()
    if not title or len(title) > MAX_TITLE:
        raise SiyuError(f"title must be 1..{MAX_TITLE} characters (got {len(title)})", "title")
    body = (item.body or "").strip()
    if len(body) > MAX_BODY:
        raise SiyuError(f"body has {len(body)} characters; at most {MAX_BODY}", "body")
    if item.kind == "text" and not body:
        raise SiyuError("a text script needs its text in body", "body")
    keywords = (item.keywords or "").strip()
    if len(keywords) > MAX_KEYWORDS:
        raise SiyuError(f"keywords have {len(keywords)} characters; at most {MAX_KEYWORDS}", "keywords")
    raw = dict(item.payload or {})
    unknown = sorted(set(raw) - set(PAYLOAD_FIELDS[item.kind]))
    if unknown:
        allowed = ", ".join(PAYLOAD_FIELDS[item.kind]) or "none"
        raise SiyuError(f"payload.{unknown[0]} is not a field of a {item.kind} item (fields: {allowed})", "payload")
    p: dict[str, str] = {}
    media = str(raw.get("media_id") or "").strip()
    if media:
        p["media_id"] = media
    sendable = bool(media) or has_file
    if item.kind == "image":
        p["image_url"] = _url(raw.get("image_url"), "payload.image_url", required=not sendable)
    elif item.kind == "link":
        p["url"] = _url(raw.get("url"), "payload.url", required=True)
        p["image_url"] = _url(raw.get("image_url"), "payload.image_url", required=False)
    elif item.kind == "miniprogram":
        appid = str(raw.get("appid") or "").strip()
        if not appid.startswith("wx") or len(appid) > 32:
            raise SiyuError("payload.appid must be the mini program's appid (starts with wx)", "payload.appid")
        page = str(raw.get("page") or "").strip()
        if not page or len(page) > 500:
            raise SiyuError("payload.page is the mini program page path, e.g. pages/index.html", "payload.page")
        p |= {"appid": appid, "page": page}
        p["image_url"] = _url(raw.get("image_url"), "payload.image_url", required=not media)
    elif item.kind == "file":
        p["url"] = _url(raw.get("url"), "payload.url", required=not sendable)
        name = str(raw.get("file_name") or "").strip()
        if not name or len(name) > 100:
            raise SiyuError("payload.file_name is the file's name (1..100 characters)", "payload.file_name")
        p["file_name"] = name
    return ScriptInput(item.kind, title, body, {k: v for k, v in p.items() if v}, keywords)


def fill(text: str, customer_name: str = "", guide_name: str = "") -> str:
    """Replace ``{name}`` and ``{guide}`` (missing names become empty; other braces stay as written)."""
    return text.replace("{name}", customer_name or "").replace("{guide}", guide_name or "")


def chat_message(
    kind: str, title: str, body: str, payload: dict[str, Any], customer_name: str = "", guide_name: str = ""
) -> dict[str, Any]:
    """The argument of ``wx.invoke('sendChatMessage', ...)`` for an item."""
    p = payload or {}
    media = str(p.get("media_id") or "")
    text = fill(body, customer_name, guide_name)
    if kind == "text":
        return {"msgtype": "text", "enterChat": True, "text": {"content": text}}
    if kind in ("image", "file") and media:
        return {"msgtype": kind, "enterChat": True, kind: {"mediaid": media}}
    if kind == "miniprogram":
        return {
            "msgtype": "miniprogram",
            "enterChat": True,
            "miniprogram": {"appid": p["appid"], "title": title, "imgUrl": p.get("image_url", ""), "page": p["page"]},
        }
    link = str(p.get("url") or p.get("image_url") or "")  # link, or image / file by URL
    return {
        "msgtype": "news",
        "enterChat": True,
        "news": {"link": link, "title": title, "desc": text, "imgUrl": str(p.get("image_url") or "")},
    }
