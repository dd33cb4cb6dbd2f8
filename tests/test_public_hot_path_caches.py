"""The help path's shortcuts give what the long way gives: the request path as Starlette's URL has it, and a
sharer kept from a page view as ``sharer_of`` reads it from the database."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import text
from starlette.requests import Request

from siyu.public.pages import url_path
from siyu.services import brands, rewards
from siyu.services import campaigns as C
from siyu.services.campaigns.participation import remember_sharer, sharer_of
from siyu.services.context import Context


@pytest.mark.parametrize("path", ["/m/h/abc", "/m/h/a?b#c\\d", "//m/h", "/m/中文 x", "/m/h/%3F"])
def test_url_path_is_starlettes_url_path(path: str) -> None:
    scope = {
        "type": "http",
        "path": path,
        "query_string": b"lang=en",
        "headers": [(b"host", b"shop.example:8443")],
        "scheme": "https",
        "server": ("10.0.0.1", 8443),
        "app": SimpleNamespace(),
    }
    assert url_path(Request(scope)) == Request(scope).url.path


def test_a_remembered_sharer_is_the_one_sharer_of_reads(ctx: Context) -> None:
    brands.create_brand(ctx, "b1", "B1")
    rewards.create_reward(ctx, "b1", {"id": "cup", "name": "杯子", "kind": "coupon", "config": {"face_value": 5}})
    cid = C.create(
        ctx,
        "b1",
        {
            "kind": "assist",
            "name": "助力",
            "starts_at": "2026-01-01T00:00:00",
            "ends_at": "2036-01-01T00:00:00",
            "assist": {"tiers": [{"threshold": 2, "reward_id": "cup"}]},
        },
    )["id"]
    C.launch(ctx, "b1", cid)
    token = C.join(ctx, "b1", cid, C.parse_identity("unionid", "s1"), channel="moments", guide_id="g1")["token"]
    from_db = sharer_of(ctx, token)
    ctx.extras.pop("campaign_sharers")
    remember_sharer(ctx, C.by_token(ctx, token))
    with ctx.engine.begin() as con:  # gone from the database: the answer can only come from what was kept
        con.execute(text("DELETE FROM campaign_participants WHERE token = :t"), {"t": token})
    assert from_db is not None and sharer_of(ctx, token) == from_db
    assert from_db.channel == "moments" and from_db.guide_id == "g1"
