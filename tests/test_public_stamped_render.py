"""A page rendered with ``fresh`` values (a cached skeleton, the fresh values escaped into it) is byte for byte the
page the template renders from all values (siyu.public.pages.render)."""

from __future__ import annotations

from types import MappingProxyType, SimpleNamespace
from typing import Any

import pytest
from starlette.requests import Request

from siyu.public import pages
from siyu.services.context import Context
from tests.support.visitors import signed_in

FRESH = ("counted", "target", "pct", "csrf", "action", "join_url")


def _request(ctx: Context, path: str, query: str = "") -> Request:
    app = SimpleNamespace(state=SimpleNamespace(ctx=ctx))
    scope = {"type": "http", "method": "GET", "path": path, "query_string": query.encode(), "headers": [], "app": app}
    return Request(scope)


def _values(token: str, counted: int, csrf: str, result: dict[str, str] | None) -> dict[str, Any]:
    view = {"title": "好友助力 <b>&", "rules": ["3 人得杯子", "8 人得券"], "carrier_text": "加导购", "open": True}
    view |= {"ended": False, "not_started": False, "ends_iso": "2026-11-30T00:00:00", "left_d": 5}
    view |= {"left_hh": "03", "left_mm": "07"}
    target = 8
    return {
        "title": view["title"],
        "c": view,
        "result": result,
        "carrier": None,
        "counted": counted,
        "target": target,
        "pct": min(100, round(100 * counted / target)),
        "signed_in": True,
        "csrf": csrf,
        "action": f"/m/h/{token}",
        "join_url": f"/m/c/camp1?from={token}",
        "countdown": True,
        "data": {"counted": counted} | ({"state": result["state"]} if result else {}),
    }


CASES = [
    ("tokA", 0, "csrf.one", None, "zh"),
    ("tokA", 3, "csrf.one", None, "zh"),
    ("tokB", 4, "", None, "en"),  # no CSRF token: the skeleton without the form's meta tag
    ("tok<\"&'>", 5, "c<s>", None, "zh"),  # fresh values are escaped as the template escapes them
    ("tokC", 3, "", {"state": "counted", "reason": "", "message": "好"}, "zh"),
    ("tokD", 9, "", {"state": "rejected", "reason": "sharer_done", "message": "已满 <x>"}, "en"),
    ("tokE", 9, "", {"state": "rejected", "reason": "sharer_done", "message": "已满 <x>"}, "en"),  # same skeleton
]


@pytest.mark.parametrize(("token", "counted", "csrf", "result", "lang"), CASES)
def test_a_stamped_page_equals_the_rendered_page(
    ctx: Context, token: str, counted: int, csrf: str, result: dict[str, str] | None, lang: str
) -> None:
    request = _request(ctx, f"/m/h/{token}", "lang=en" if lang == "en" else "")
    v = signed_in(lang=lang)
    plain = pages.render(request, v, "help.html", **_values(token, counted, csrf, result)).body
    for _ in range(2):  # the skeleton made, then taken from the cache
        stamped = pages.render(request, v, "help.html", fresh=FRESH, **_values(token, counted, csrf, result)).body
        assert stamped == plain
    assert token.encode() not in plain or "<" not in token  # a token needing escapes appears only escaped


def test_one_skeleton_serves_many_sharers_and_counts(ctx: Context) -> None:
    ctx.extras.pop("public_skeletons", None)
    v = signed_in(lang="zh")
    for i in range(1, 30):
        request = _request(ctx, f"/m/h/tok{i}")
        page = pages.render(request, v, "help.html", fresh=FRESH, **_values(f"tok{i}", i, "csrf.x", None)).body
        assert f'data-counted="{i}"'.encode() in page and f"/m/h/tok{i}".encode() in page
    assert len(ctx.extras["public_skeletons"]) == 1


def test_a_data_entry_differing_from_its_fresh_namesake_is_not_stamped(ctx: Context) -> None:
    v = signed_in(lang="zh")
    values = _values("tokZ", 4, "csrf.z", None) | {"data": {"counted": 7}}  # not the top-level count
    request = _request(ctx, "/m/h/tokZ")
    plain = pages.render(request, v, "help.html", **values).body
    assert pages.render(request, v, "help.html", fresh=FRESH, **values).body == plain
    assert b'data-counted="7"' in plain


def test_a_shared_view_is_keyed_by_its_content(ctx: Context) -> None:
    # campaign views are read-only mappings shared by every page of a minute; their repr is made once per object
    v = signed_in(lang="zh")
    request = _request(ctx, "/m/h/tokV")
    pages_seen = []
    for title in ("第一版", "第一版", "第二版"):  # a new view object each time: same content, then changed
        values = _values("tokV", 2, "csrf.v", None)
        values["c"] = MappingProxyType(dict(values["c"], title=title))
        plain = pages.render(request, v, "help.html", **values).body
        stamped = pages.render(request, v, "help.html", fresh=FRESH, **values).body
        assert stamped == plain and title.encode() in stamped
        pages_seen.append(stamped)
    assert pages_seen[0] == pages_seen[1] != pages_seen[2]
