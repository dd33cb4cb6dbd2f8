"""FastAPI's request-validation errors (422) in the project's error shape: ``error`` says what is wrong and how to
fix it, ``field`` names the first offending field; ``detail`` keeps Pydantic's full list for programs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import Path, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from siyu.errors import SiyuError

_PLACES = {"body": "request body", "query": "query parameter", "path": "path parameter", "header": "header"}
_PLACES |= {"cookie": "cookie", "form": "form field"}


def field_of(loc: Sequence[Any]) -> tuple[str, str]:
    """(dotted field name, where it was sent) of a Pydantic error location such as ``("body", "items", 0, "qty")``."""
    parts = list(loc)
    place = _PLACES.get(str(parts[0]), "request") if parts else "request"
    if parts and str(parts[0]) in _PLACES:
        parts = parts[1:]
    name = ".".join(str(p) for p in parts) or "body"
    return name, place


def describe(errors: Sequence[dict[str, Any]]) -> tuple[str, str]:
    """(message, field) for a list of Pydantic errors: the first error spelled out, the count of the others."""
    if not errors:
        return "the request is not valid; check it against /openapi.json", "body"
    first = errors[0]
    name, place = field_of(first.get("loc", ()))
    msg = str(first.get("msg", "is not valid"))
    if first.get("type") == "json_invalid":
        where = parts[-1] if (parts := list(first.get("loc", ()))) and isinstance(parts[-1], int) else "?"
        text = f"the request body is not valid JSON (at character {where}); send a JSON object as in /openapi.json"
        name = "body"
    elif first.get("type") == "missing":
        text = f"{place} '{name}' is missing; send it (see /openapi.json for its type)"
    elif name == "body" and first.get("type") in {"model_attributes_type", "dict_type"}:
        text = f"the request body is not valid JSON for this endpoint ({msg}); send a JSON object as in /openapi.json"
    else:
        text = f"{place} '{name}': {msg}; send a value that satisfies this (see /openapi.json)"
    if len(errors) > 1:
        text += f" (and {len(errors) - 1} more problem(s), listed in 'detail')"
    return text, name


async def siyu_error(_request: Request, exc: Exception) -> JSONResponse:
    """A ``SiyuError`` in the project's shape: its status, ``error`` and (when it names one) ``field``."""
    if not isinstance(exc, SiyuError):  # pragma: no cover - registered for SiyuError only
        raise exc
    body: dict[str, object] = {"error": exc.message}
    if exc.field:
        body["field"] = exc.field
    return JSONResponse(status_code=exc.status_code, content=body)


async def validation_error(_request: Request, exc: Exception) -> JSONResponse:
    """422 with ``error`` (what and how to fix), ``field`` and Pydantic's ``detail`` list."""
    errors = list(exc.errors()) if isinstance(exc, RequestValidationError) else []
    message, name = describe(errors)
    body = {"error": message, "field": name, "detail": jsonable_encoder(errors)}
    return JSONResponse(status_code=422, content=body)


_BODY_ERRORS = {"There was an error parsing the body", "Invalid multipart data."}


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette / FastAPI ``HTTPException`` (unparseable bodies, unknown paths, wrong methods) in the project's
    shape: ``error`` says what and how to fix, ``field`` where it applies; ``detail`` is kept for programs."""
    if not isinstance(exc, StarletteHTTPException):  # pragma: no cover - registered for HTTPException only
        raise exc
    detail = exc.detail
    body: dict[str, Any] = {"error": str(detail), "detail": detail}
    if detail in _BODY_ERRORS:
        kind = "multipart/form-data" if "multipart" in str(detail) else "JSON"
        body["error"] = f"the request body could not be read as {kind} ({detail}); send it as in /openapi.json"
        body["field"] = "body"
    elif exc.status_code == 404 and detail == "Not Found":
        body["error"] = f"no such endpoint: {request.url.path}; see /openapi.json for the endpoints"
    elif exc.status_code == 405:
        body["error"] = f"{request.method} is not allowed on {request.url.path}; see /openapi.json for its methods"
    return JSONResponse(status_code=exc.status_code, content=body, headers=getattr(exc, "headers", None))


def _numeric_params(request: Request) -> list[tuple[str, str, str]]:
    """(name, value, place) of the request's path and query values that are long integers, longest first."""
    found = [(k, v, "query parameter") for k, v in request.query_params.multi_items()]
    found += [(k, str(v), "path parameter") for k, v in request.path_params.items()]
    longs = [(k, v, p) for k, v, p in found if v.strip().lstrip("+-").isdigit() and len(v.strip()) > 9]
    return sorted(longs, key=lambda x: -len(x[1]))


async def out_of_range(request: Request, exc: Exception) -> JSONResponse:
    """A number too large for a date or a database column (an endpoint without its own bound): 422 naming the
    longest numeric parameter of the request, instead of a 500."""
    longs = _numeric_params(request)
    if longs:
        name, value, place = longs[0]
        text = f"{place} '{name}' = {value[:30]} is out of range; send a smaller number (see /openapi.json)"
    else:
        name, text = "body", f"a number in the request is out of range ({exc}); send smaller numbers"
    return JSONResponse(status_code=422, content={"error": text, "field": name})


# Upper bounds of integers taken from a request, so that no value overflows a database column or a date: a row id
# fits SQLite/PostgreSQL BIGINT, a span of days stays within a century.
MAX_ID = 2**63 - 1
MAX_DAYS = 36_600

RowId = Annotated[int, Path(ge=0, le=MAX_ID, description="a row id")]
"""A path parameter that is a database row id (in range of BIGINT)."""
