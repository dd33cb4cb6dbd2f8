"""Segment-compatible HTTP tracking API: /v1/identify, track, page, screen, group, alias, batch, import.

Auth is HTTP Basic with the write key as the user name (Segment's scheme) or ``writeKey`` in the JSON body.
A 200 is sent only after the events are committed to the warehouse.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import math
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response

from siyu.services.context import Context
from siyu.services.errors import SiyuError
from siyu.services.ingest import BatchRejected, RateLimited, submit
from siyu.services.rate_limit import context_bucket

router = APIRouter(prefix="/v1", tags=["ingestion"])
# requests without a valid write key, per client address: a wrong key is refused (401) up to this rate, then the
# address gets 429 before its body is even parsed (the per-key limit only applies once a key is known)
AUTH_FAIL_RATE, AUTH_FAIL_BURST = 5.0, 50


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def basic_user(header: str | None) -> str | None:
    """The user name of an HTTP Basic ``Authorization`` header (the Segment write key), or None."""
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.split(":", 1)[0] or None


async def _handle(request: Request, type_: str | None) -> Response:
    ctx: Context = request.app.state.ctx
    failures = context_bucket(ctx, "v1_auth_failures", AUTH_FAIL_RATE, AUTH_FAIL_BURST)
    client = request.client.host if request.client else ""
    wait = failures.peek(client)
    if wait > 0:
        msg = f"too many requests without a valid write key from this address; retry in {math.ceil(wait)} s"
        return _json(429, {"success": False, "error": msg, "field": "writeKey"}, {"Retry-After": str(math.ceil(wait))})
    body = await request.body()
    try:
        sub = submit(
            ctx,
            body,
            type_,
            basic_user(request.headers.get("authorization")),
            request.headers.get("content-encoding"),
        )
        await asyncio.wrap_future(sub.future)
    except RateLimited as exc:
        return _json(
            429,
            {"success": False, "error": exc.message, "field": exc.field},
            {"Retry-After": str(max(1, math.ceil(exc.retry_after)))},
        )
    except BatchRejected as exc:
        return _json(400, {"success": False, "error": exc.message, "field": exc.field, "rejected": exc.rejected})
    except SiyuError as exc:
        if exc.status_code == 401:
            failures.take(client)
        return _json(exc.status_code, {"success": False, "error": exc.message, "field": exc.field})
    return _json(200, sub.body())


@router.post("/identify", summary="Segment identify: who the user is (traits)")
async def identify(request: Request) -> Response:
    return await _handle(request, "identify")


@router.post("/track", summary="Segment track: an action the user performed")
async def track(request: Request) -> Response:
    return await _handle(request, "track")


@router.post("/page", summary="Segment page view")
async def page(request: Request) -> Response:
    return await _handle(request, "page")


@router.post("/screen", summary="Segment mobile screen view")
async def screen(request: Request) -> Response:
    return await _handle(request, "screen")


@router.post("/group", summary="Segment group: associate the user with an account")
async def group(request: Request) -> Response:
    return await _handle(request, "group")


@router.post("/alias", summary="Segment alias: merge previousId into userId")
async def alias(request: Request) -> Response:
    return await _handle(request, "alias")


@router.post("/batch", summary="Segment batch: up to 2,500 messages / 500 KB")
async def batch(request: Request) -> Response:
    return await _handle(request, None)


@router.post("/import", summary="Segment import (same as batch)")
async def import_(request: Request) -> Response:
    return await _handle(request, None)
