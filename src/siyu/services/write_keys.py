"""Segment write keys: several per brand, revocable; only a SHA-256 hash of each key is stored."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from siyu.services.brands import get_brand
from siyu.services.context import Context
from siyu.services.errors import NotFound, Unauthorized
from siyu.stores.state.models import WriteKeyRow, utcnow

KEY_PREFIX = "wk_"
CACHE_SECONDS = 2.0  # how long a lookup is trusted; revocation from another process takes effect after this


@dataclass(frozen=True)
class WriteKey:
    """A write key's public description (the secret itself is shown once, at creation)."""

    id: str
    brand_id: str
    key_prefix: str
    label: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class KeyAuth:
    """Who a valid write key acts for."""

    key_id: str
    brand_id: str


def hash_key(key: str) -> str:
    """SHA-256 hex of a write key (keys are 192-bit random, so a fast hash is safe)."""
    return hashlib.sha256(key.encode()).hexdigest()


def _public(row: WriteKeyRow) -> WriteKey:
    return WriteKey(row.id, row.brand_id, row.key_prefix, row.label, row.created_at, row.revoked_at)


def create_key(ctx: Context, brand_id: str, label: str = "") -> tuple[WriteKey, str]:
    """Create a write key for a brand; returns its description and the secret (not stored, show it once)."""
    get_brand(ctx, brand_id)
    secret = KEY_PREFIX + secrets.token_urlsafe(24)
    row = WriteKeyRow(
        id="wkid_" + secrets.token_hex(6),
        brand_id=brand_id,
        key_hash=hash_key(secret),
        key_prefix=secret[:10],
        label=label,
        created_at=utcnow(),
    )
    with ctx.sessions() as s:
        s.add(row)
        s.commit()
    return _public(row), secret


def list_keys(ctx: Context, brand_id: str) -> list[WriteKey]:
    """All write keys of a brand, revoked ones included, oldest first."""
    get_brand(ctx, brand_id)
    with ctx.sessions() as s:
        rows = s.scalars(select(WriteKeyRow).where(WriteKeyRow.brand_id == brand_id).order_by(WriteKeyRow.created_at))
        return [_public(r) for r in rows]


def revoke_key(ctx: Context, key_id: str, brand_id: str | None = None) -> WriteKey:
    """Revoke a key by id (optionally only within ``brand_id``); its requests get 401. Revoking twice is harmless."""
    with ctx.sessions() as s:
        row = s.get(WriteKeyRow, key_id)
        if row is None or (brand_id is not None and row.brand_id != brand_id):
            raise NotFound(f"write key {key_id!r} does not exist; list keys with `siyu keys list BRAND`", "key_id")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            s.commit()
        key = _public(row)
    cache = ctx.extras.get("write_key_cache")
    if isinstance(cache, KeyCache):
        cache.clear()
    return key


class KeyCache:
    """Short-lived in-process cache of key-hash → KeyAuth (or None), keeping the state DB off the hot path."""

    def __init__(self, ttl: float = CACHE_SECONDS) -> None:
        self.ttl = ttl
        self._items: dict[str, tuple[float, KeyAuth | None]] = {}
        self._lock = threading.Lock()

    def get(self, key_hash: str) -> tuple[bool, KeyAuth | None]:
        item = self._items.get(key_hash)
        if item is None or item[0] < time.monotonic():
            return False, None
        return True, item[1]

    def put(self, key_hash: str, auth: KeyAuth | None) -> None:
        with self._lock:
            if len(self._items) > 10_000:
                self._items.clear()
            self._items[key_hash] = (time.monotonic() + self.ttl, auth)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def close(self) -> None:
        self.clear()


def _cache(ctx: Context) -> KeyCache:
    cache = ctx.extras.get("write_key_cache")
    if not isinstance(cache, KeyCache):
        cache = ctx.extras.setdefault("write_key_cache", KeyCache())
    return cache


def authenticate_key(ctx: Context, key: str | None) -> KeyAuth:
    """Resolve a write key to its brand, or raise Unauthorized with how to fix it."""
    if not key:
        raise Unauthorized(
            "missing write key: send it as the HTTP Basic user name (password empty) or as writeKey in the body",
            "writeKey",
        )
    digest = hash_key(key)
    cache = _cache(ctx)
    hit, auth = cache.get(digest)
    if not hit:
        with ctx.sessions() as s:
            row = s.scalar(select(WriteKeyRow).where(WriteKeyRow.key_hash == digest))
            auth = None if row is None or row.revoked_at is not None else KeyAuth(row.id, row.brand_id)
            revoked = row is not None and row.revoked_at is not None
        cache.put(digest, auth)
        if auth is None and revoked:
            raise Unauthorized("write key has been revoked; create a new one with `siyu keys create`", "writeKey")
    if auth is None:
        raise Unauthorized(
            "unknown or revoked write key; check the key or create one with `siyu keys create BRAND`", "writeKey"
        )
    return auth
