"""``/WW_verify_<code>.txt`` at the web root: WeCom's trusted-domain verification file, the exact bytes an admin set
(``siyu.services.sidebar.verify_file``), ``text/plain``; 404 for any other name or a file no brand set.
Public (WeCom's checker has no credentials), so limited per client address."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from siyu.api.deps import get_ctx
from siyu.services.context import Context
from siyu.services.errors import NotFound
from siyu.services.rate_limit import check_rate
from siyu.services.sidebar.verify_file import content_of

router = APIRouter(tags=["sidebar"])
RATE, BURST = 2.0, 30


@router.api_route("/WW_verify_{code}.txt", methods=["GET", "HEAD"], include_in_schema=False)
def verify_file(code: str, request: Request, ctx: Context = Depends(get_ctx)) -> Response:
    """The verification file named ``WW_verify_<code>.txt``."""
    check_rate(ctx, "wecom_verify_file", RATE, BURST, request.client.host if request.client else "")
    content = content_of(ctx, f"WW_verify_{code}.txt")
    if content is None:
        raise NotFound("no such file", "path")
    return Response(content, media_type="text/plain")
