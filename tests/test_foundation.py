"""Stores open and migrate on both state backends; brands and users round-trip."""

from __future__ import annotations

import pytest

from siyu.domain.models import Role
from siyu.services import brands
from siyu.services.context import Context
from siyu.services.errors import Conflict, SiyuError


def test_brand_and_user_roundtrip(any_ctx: Context) -> None:
    brands.create_brand(any_ctx, "acme", "Acme 美妆")
    with pytest.raises(Conflict):
        brands.create_brand(any_ctx, "acme", "again")
    user = brands.create_user(any_ctx, "acme", "op1", "s3cret-pass", Role.OPERATOR)
    assert user.role is Role.OPERATOR
    assert brands.authenticate(any_ctx, "op1", "s3cret-pass") == user
    assert brands.authenticate(any_ctx, "op1", "wrong-pass") is None


def test_guide_user_needs_guide_id(ctx: Context) -> None:
    brands.create_brand(ctx, "acme", "Acme")
    with pytest.raises(SiyuError) as err:
        brands.create_user(ctx, "acme", "g1", "s3cret-pass", Role.GUIDE)
    assert err.value.field == "guide_id"


def test_password_hash_is_salted() -> None:
    a, b = brands.hash_password("same-password"), brands.hash_password("same-password")
    assert a != b
    assert brands.verify_password("same-password", a) and not brands.verify_password("other", a)


def test_warehouse_schema_is_idempotent(ctx: Context) -> None:
    ctx.warehouse.migrate()
    tables = set(ctx.warehouse.ibis.list_tables())
    assert {"events", "identities", "orders", "relations", "identity_observations"} <= tables
