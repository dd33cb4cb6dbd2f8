"""API authentication: login/logout endpoints and the ``current_user`` dependency.

A request is authenticated by ``Authorization: Bearer <token>``, the ``siyu_token`` HttpOnly cookie set by
``POST /api/auth/login``, or HTTP Basic ``username:password`` (throttled like the login endpoint).
"""

from __future__ import annotations

import base64
import binascii

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel

from siyu.api.deps import get_ctx
from siyu.services import auth as auth_service
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.errors import Unauthorized

COOKIE_NAME = "siyu_token"

router = APIRouter(prefix="/api/auth", tags=["auth"])


class LoginBody(BaseModel):
    """Credentials for ``POST /api/auth/login``."""

    username: str
    password: str


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


def user_json(user: User) -> dict[str, object]:
    """The public fields of a user."""
    return {
        "id": user.id,
        "brand_id": user.brand_id,
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role.value,
        "guide_id": user.guide_id,
        "language": user.language,
    }


def current_user(request: Request, ctx: Context = Depends(get_ctx)) -> User:
    """The authenticated user of the request (Bearer token, cookie or HTTP Basic); 401 otherwise."""
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return auth_service.user_from_token(ctx, credentials.strip())
    if scheme.lower() == "basic" and credentials.strip():
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise Unauthorized("malformed Basic credentials; send base64(username:password)") from exc
        username, sep, password = decoded.partition(":")
        if not sep:
            raise Unauthorized("malformed Basic credentials; send base64(username:password)")
        return auth_service.login(ctx, username, password, _client(request))
    cookie = request.cookies.get(COOKIE_NAME)
    if cookie:
        return auth_service.user_from_token(ctx, cookie)
    raise Unauthorized("log in first: POST /api/auth/login, then send 'Authorization: Bearer <token>'")


@router.post("/login")
def login(body: LoginBody, request: Request, response: Response, ctx: Context = Depends(get_ctx)) -> dict[str, object]:
    """Check the password; return a signed token (also set as an HttpOnly cookie)."""
    user = auth_service.login(ctx, body.username, body.password, _client(request))
    token = auth_service.issue_token(ctx, user)
    response.set_cookie(
        COOKIE_NAME,
        token,
        max_age=auth_service.TOKEN_MAX_AGE_SECONDS,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return {"token": token, "token_type": "bearer", "user": user_json(user)}


@router.post("/logout")
def logout(response: Response) -> dict[str, str]:
    """Forget the session cookie."""
    response.delete_cookie(COOKIE_NAME)
    return {"status": "logged out"}


@router.get("/me")
def me(user: User = Depends(current_user)) -> dict[str, object]:
    """The logged-in user."""
    return user_json(user)
