"""Brands (workspaces) and their users."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass

from sqlalchemy import select

from siyu.domain.models import Role
from siyu.services.context import Context
from siyu.services.errors import Conflict, NotFound, SiyuError
from siyu.stores.state.models import BrandRow, UserRow

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_BRAND_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{1,62}$")


def hash_password(password: str) -> str:
    """Salted scrypt hash in the form ``scrypt$<salt hex>$<hash hex>``."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, salt_hex, digest_hex = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt_hex), dklen=32, **_SCRYPT)
    return hmac.compare_digest(digest.hex(), digest_hex)


@dataclass(frozen=True)
class User:
    """A console / API user. A guide user is bound to one guide_id and sees only that guide's customers."""

    id: int
    brand_id: str
    username: str
    display_name: str
    role: Role
    guide_id: str | None
    language: str


def _user(row: UserRow) -> User:
    return User(row.id, row.brand_id, row.username, row.display_name, Role(row.role), row.guide_id, row.language)


def create_brand(ctx: Context, brand_id: str, name: str) -> BrandRow:
    """Create a brand; ids are lowercase letters, digits, '-' and '_'."""
    if not _BRAND_ID.match(brand_id):
        raise SiyuError("brand id must be 2-63 lowercase letters, digits, '-' or '_'", field="brand_id")
    with ctx.sessions() as s:
        if s.get(BrandRow, brand_id) is not None:
            raise Conflict(f"brand {brand_id!r} already exists", field="brand_id")
        row = BrandRow(id=brand_id, name=name, settings={})
        s.add(row)
        s.commit()
        return row


def ensure_brand(ctx: Context, brand_id: str, name: str) -> BrandRow:
    with ctx.sessions() as s:
        row = s.get(BrandRow, brand_id)
    return row if row is not None else create_brand(ctx, brand_id, name)


def get_brand(ctx: Context, brand_id: str) -> BrandRow:
    with ctx.sessions() as s:
        row = s.get(BrandRow, brand_id)
    if row is None:
        raise NotFound(f"brand {brand_id!r} does not exist; create it with `siyu brands create`", field="brand")
    return row


def list_brands(ctx: Context) -> list[BrandRow]:
    with ctx.sessions() as s:
        return list(s.scalars(select(BrandRow).order_by(BrandRow.id)))


def create_user(
    ctx: Context,
    brand_id: str,
    username: str,
    password: str,
    role: Role,
    guide_id: str | None = None,
    display_name: str = "",
    language: str = "zh",
) -> User:
    """Create a user; a guide user must name the guide_id it acts as."""
    if role == Role.GUIDE and not guide_id:
        raise SiyuError("a guide user needs guide_id (the 导购 it acts as)", field="guide_id")
    if len(password) < 8:
        raise SiyuError("password must have at least 8 characters", field="password")
    get_brand(ctx, brand_id)
    with ctx.sessions() as s:
        if s.scalar(select(UserRow).where(UserRow.username == username)) is not None:
            raise Conflict(f"user {username!r} already exists", field="username")
        row = UserRow(
            brand_id=brand_id,
            username=username,
            display_name=display_name or username,
            password_hash=hash_password(password),
            role=role.value,
            guide_id=guide_id,
            language=language,
        )
        s.add(row)
        s.commit()
        return _user(row)


def authenticate(ctx: Context, username: str, password: str) -> User | None:
    """Return the user when the password matches, else None."""
    with ctx.sessions() as s:
        row = s.scalar(select(UserRow).where(UserRow.username == username, UserRow.active.is_(True)))
    if row is None or not verify_password(password, row.password_hash):
        return None
    return _user(row)


def get_user(ctx: Context, user_id: int) -> User:
    with ctx.sessions() as s:
        row = s.get(UserRow, user_id)
    if row is None:
        raise NotFound(f"user {user_id} does not exist")
    return _user(row)
