"""Refuse NUL characters in a request's path, query or JSON body (422 naming where): no text field of siyu may hold
one, and a NUL would otherwise reach a SQL literal or a C string and fail deep inside (a 500)."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

from siyu.api.asgi_body import read_body, replaying, send_text

_NUL_JSON = (b"\\u0000", b"\\U0000")
# ingestion checks each message of a batch itself (a bad message is refused alone, with its index, and the good
# ones land) and bounds the body before reading it, so its bodies are not buffered or refused whole here
_OWN_CHECKS = ("/v1/",)
MAX_JSON_BODY = 8 * 2**20  # the API's JSON bodies (definitions, settings) are far smaller; this bounds the buffer


class NulGuard:
    """ASGI middleware: 422 ``{"error", "field"}`` when the path, the query string or a JSON body has a NUL."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = nul_in_url(scope)
        if refusal is not None:
            await _refuse(send, *refusal)
            return
        if scope.get("path", "").startswith(_OWN_CHECKS) or b"json" not in _content_type(scope):
            await self.app(scope, receive, send)
            return
        body = await read_body(receive, MAX_JSON_BODY)
        if body is None:
            await _refuse(send, "body", f"the JSON body is over {MAX_JSON_BODY // 2**20} MiB; send less", 413)
            return
        if any(n in body for n in _NUL_JSON):
            await _refuse(send, "body", "a text field of the JSON body holds a NUL character (\\u0000); remove it")
            return
        await self.app(scope, replaying(body, receive), send)


def nul_in_url(scope: Scope) -> tuple[str, str] | None:
    """(field, message) when the path or the query string of ``scope`` holds a NUL, else None."""
    raw_path = scope.get("raw_path") or scope.get("path", "").encode()
    if b"%00" in raw_path or "\x00" in scope.get("path", ""):
        return "path", "the URL path holds a NUL character (%00); remove it"
    if b"%00" in scope.get("query_string", b""):
        return "query", "a query parameter holds a NUL character (%00); remove it"
    return None


async def _refuse(send: Send, field: str, message: str, status: int = 422) -> None:
    await send_text(send, status, json.dumps({"error": message, "field": field}), b"application/json")


def _content_type(scope: Scope) -> bytes:
    """The request's Content-Type header (b"" without one); the last one wins, as a dict of the headers would."""
    found = b""
    for name, value in scope.get("headers") or ():
        if name == b"content-type":
            found = value
    return found
