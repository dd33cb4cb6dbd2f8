"""Signed strings of the public pages are verified once per process and remembered — never trusted past their age
and never for other bytes (siyu.public.visitor._verified)."""

from __future__ import annotations

import dataclasses
import time

import pytest
from itsdangerous import BadSignature, SignatureExpired

from siyu.public import visitor as V
from siyu.services.context import Context
from tests.support.visitors import signed_in


def test_session_cookie_is_remembered_but_its_age_is_checked_every_time(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = V._serializers(ctx)[1].dumps({"b": "demo", "s": "sid1"})
    assert V._verified(ctx, "session", raw, 60) == {"b": "demo", "s": "sid1"}
    assert ("session", raw) in ctx.extras["public_verified"]
    now = time.time()
    monkeypatch.setattr(V.time, "time", lambda: now + 61)  # the cached answer is older than max_age now
    with pytest.raises(SignatureExpired):
        V._verified(ctx, "session", raw, 60)


def test_forged_and_altered_strings_are_refused(ctx: Context) -> None:
    raw = V._serializers(ctx)[1].dumps({"b": "demo", "s": "sid1"})
    V._verified(ctx, "session", raw, 60)
    with pytest.raises(BadSignature):
        V._verified(ctx, "session", raw[:-2] + ("AA" if not raw.endswith("AA") else "BB"), 60)
    with pytest.raises(BadSignature):
        V._verified(ctx, "csrf", "forged.token")


def test_csrf_token_made_here_checks_without_a_new_hmac(ctx: Context) -> None:
    v = signed_in(sid="sid9")
    token = V.csrf_token(ctx, v)
    assert token == V._serializers(ctx)[2].dumps("sid9") and V.csrf_token(ctx, v) == token
    V.check_csrf(ctx, v, token)
    other = dataclasses.replace(v, sid="sid10")
    with pytest.raises(V.Forbidden):
        V.check_csrf(ctx, other, token)  # a token of another session stays refused


def test_the_cache_is_bounded(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(V, "VERIFIED_CACHE", 5)
    for i in range(12):
        V._verified(ctx, "session", V._serializers(ctx)[1].dumps({"s": f"s{i}"}), 60)
    assert len(ctx.extras["public_verified"]) <= 5
