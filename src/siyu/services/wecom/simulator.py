"""A simulated customer for the demo: when a brand's WeCom ``api_base`` is the local WeCom server
(``tests/wecom_server``, started by ``make demo``; it answers ``GET /_sim/stats``), the console can "scan" a
channel code or "delete" a guide as a customer would, through the server's ``/_sim`` endpoints.

What happened is then read from siyu's own records (the code's onboarding row, the warehouse relation and the
identifier's tags) — never from the simulator's answer.  Never offered for a real WeCom (``is_local`` is False).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from siyu.errors import NotFound, SiyuError
from siyu.services.context import Context
from siyu.services.wecom import channel_codes as codes
from siyu.services.wecom.config import get_config

PROBE_TIMEOUT = 1.0
WAIT_SECONDS = 20.0
_probe_cache: dict[str, tuple[float, bool]] = {}
PROBE_TTL = 10.0


@dataclass(frozen=True)
class Outcome:
    """What siyu recorded for one simulated scan (or delete)."""

    code_id: int
    external_userid: str
    guide_id: str
    userid: str
    welcome: str
    welcome_text: str
    tag: str
    invite: str
    channel_id: str | None
    tags: list[str]
    lost_by: str | None
    done: bool

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _api_base(ctx: Context, brand_id: str) -> str | None:
    try:
        return get_config(ctx, brand_id).api_base.rstrip("/")
    except NotFound:
        return None


def is_local(ctx: Context, brand_id: str) -> bool:
    """True when the brand's WeCom is a local server with simulation endpoints (probed, cached for 10 s)."""
    base = _api_base(ctx, brand_id)
    if base is None or not base.startswith(("http://127.0.0.1", "http://localhost")):
        return False  # a real WeCom (qyapi.weixin.qq.com) is never probed
    hit = _probe_cache.get(base)
    if hit is not None and time.monotonic() - hit[0] < PROBE_TTL:
        return hit[1]
    try:
        ok = httpx.get(f"{base}/_sim/stats", timeout=PROBE_TIMEOUT).status_code == 200
    except httpx.HTTPError:
        ok = False
    _probe_cache[base] = (time.monotonic(), ok)
    return ok


def _local_base(ctx: Context, brand_id: str) -> str:
    base = _api_base(ctx, brand_id)
    if base is None or not is_local(ctx, brand_id):
        raise SiyuError("the brand's WeCom is not the local WeCom server; simulation is only for the demo", "api_base")
    return base


def _relation(ctx: Context, brand_id: str, ext: str, guide_id: str) -> tuple[str | None, str | None]:
    rows = ctx.warehouse.fetch(
        "SELECT channel_id, lost_by FROM relations WHERE brand_id = ? AND external_userid = ? AND guide_id = ?",
        [brand_id, ext, guide_id],
    )
    return (rows[0][0], rows[0][1]) if rows else (None, None)


def _tags(ctx: Context, brand_id: str, ext: str) -> list[str]:
    rows = ctx.warehouse.fetch(
        "SELECT coalesce(t.name, it.tag_id) FROM identifier_tags it LEFT JOIN tags t "
        "ON t.brand_id = it.brand_id AND t.tag_id = it.tag_id "
        "WHERE it.brand_id = ? AND it.id_type = 'external_userid' AND it.id_value = ? ORDER BY 1",
        [brand_id, ext],
    )
    return [str(r[0]) for r in rows]


def outcome(ctx: Context, brand_id: str, code_id: int, external_userid: str) -> Outcome | None:
    """siyu's records of a code's add of ``external_userid`` (None while the callback is not processed yet)."""
    add = next(
        (a for a in codes.adds_log(ctx, brand_id, code_id, None, 1000) if a["external_userid"] == external_userid), None
    )
    if add is None:
        return None
    channel, lost_by = _relation(ctx, brand_id, external_userid, add["guide_id"])
    steps = (add["welcome"], add["tag"], add["invite"])
    return Outcome(
        code_id,
        external_userid,
        add["guide_id"],
        "",
        add["welcome"],
        add["welcome_text"],
        add["tag"],
        add["invite"],
        channel,
        _tags(ctx, brand_id, external_userid),
        lost_by,
        all(s not in ("pending", "sending") for s in steps),
    )


def _wait(ctx: Context, brand_id: str, code_id: int, ext: str, timeout: float, lost: bool = False) -> Outcome:
    deadline = time.monotonic() + timeout
    out = None
    while time.monotonic() < deadline:
        out = outcome(ctx, brand_id, code_id, ext)
        if out is not None and out.done and (not lost or out.lost_by):
            return out
        time.sleep(0.1)
    if out is None:
        raise SiyuError(f"siyu has not recorded the add of {ext} within {timeout:.0f} s (is the worker running?)")
    return out


def scan(ctx: Context, brand_id: str, code_id: int, timeout: float = WAIT_SECONDS) -> Outcome:
    """A simulated customer scans code ``code_id`` and adds its guide; returns what siyu recorded."""
    base = _local_base(ctx, brand_id)
    code = codes.get_code(ctx, brand_id, code_id)
    if code["status"] != "active" or not code["config_id"]:
        raise SiyuError(f"code {code_id} is not active in WeCom; scan an active code", "code_id")
    try:
        r = httpx.post(f"{base}/_sim/scan", params={"config_id": code["config_id"]}, timeout=30.0)
    except httpx.HTTPError as exc:
        raise SiyuError(f"the local WeCom server did not answer: {exc}", "api_base") from exc
    if r.status_code != 200:
        raise SiyuError(f"the local WeCom server refused the scan ({r.status_code}): {r.text[:200]}", "code_id")
    sim = r.json()
    out = _wait(ctx, brand_id, code_id, str(sim["external_userid"]), timeout)
    return Outcome(**{**out.as_dict(), "userid": str(sim["userid"])})


def delete(ctx: Context, brand_id: str, code_id: int, external_userid: str, timeout: float = WAIT_SECONDS) -> Outcome:
    """The simulated customer of a code's add deletes the guide (删粉); returns siyu's record after it."""
    base = _local_base(ctx, brand_id)
    add = outcome(ctx, brand_id, code_id, external_userid)
    if add is None:
        raise SiyuError(f"code {code_id} brought no add of {external_userid}", "external_userid")
    userid = ctx.warehouse.fetch(
        "SELECT wecom_userid FROM guides WHERE brand_id = ? AND guide_id = ?", [brand_id, add.guide_id]
    )
    if not userid or not userid[0][0]:
        raise SiyuError(f"guide {add.guide_id} has no WeCom userid", "guide_id")
    try:
        r = httpx.post(
            f"{base}/_sim/delete", params={"userid": userid[0][0], "external_userid": external_userid}, timeout=30.0
        )
    except httpx.HTTPError as exc:
        raise SiyuError(f"the local WeCom server did not answer: {exc}", "api_base") from exc
    if r.status_code != 200:
        raise SiyuError(
            f"the local WeCom server refused the delete ({r.status_code}): {r.text[:200]}", "external_userid"
        )
    out = _wait(ctx, brand_id, code_id, external_userid, timeout, lost=True)
    return Outcome(**{**out.as_dict(), "userid": str(userid[0][0])})
