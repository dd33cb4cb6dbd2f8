"""Which guide a public join is credited to, over real HTTP (API + public pages on a live server): a guide's own
promotion link (``g=`` signed with the campaign, from ``/api/campaigns/{id}/guide-link``), else the sharer's guide
for invited people, else the customer's own WeCom guide (relations); forged or foreign ``g=`` values are ignored;
a guide user gets only their own link."""

from __future__ import annotations

import re
from datetime import datetime

import httpx

from siyu.domain.models import Role
from siyu.services import brands
from siyu.services import campaigns as C
from siyu.services.campaigns.attribution import join_guide, sign_guide
from siyu.services.context import Context
from tests.test_public_pages import B, Phone, assist, live, site  # noqa: F401  (site is a fixture)

PW = "s3cret-pass"


def _login(base: str, user: str) -> dict[str, str]:
    tok = httpx.post(f"{base}/api/auth/login", json={"username": user, "password": PW}).json()["token"]
    return {"Authorization": f"Bearer {tok}"}


def _world(ctx: Context) -> None:
    brands.create_user(ctx, B, "boss", PW, Role.ADMIN)
    brands.create_user(ctx, B, "wang", PW, Role.GUIDE, guide_id="g1")
    with ctx.warehouse.transaction() as cur:
        cur.execute(
            "INSERT INTO guides (brand_id, guide_id, name, wecom_userid) VALUES "
            f"('{B}', 'g1', '王', 'wang'), ('{B}', 'g2', '李', 'li'), ('{B}', 'g3', '赵', 'zhao')"
        )
        # person 7 (unionid union00007) is customer cust7, a WeCom contact of g2 (and formerly of g3)
        cur.execute(
            "INSERT INTO identities (brand_id, id_type, id_value, customer_id) VALUES "
            f"('{B}', 'unionid', 'union00007', 'cust7'), ('{B}', 'external_userid', 'wmSeven', 'cust7')"
        )
        cur.execute(
            "INSERT INTO relations (brand_id, external_userid, guide_id, added_at, state) VALUES "
            f"('{B}', 'wmSeven', 'g2', '2025-03-01', 'active'), ('{B}', 'wmSeven', 'g3', '2025-06-01', 'lost')"
        )


def _submit(phone: Phone, page: str) -> httpx.Response:
    """Open ``page`` and post its start form with every hidden field, as a browser does."""
    html = phone.get(page).text
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html))
    action = re.search(r'<form method="post" action="([^"]+)"', html)
    assert action and "csrf" in fields, html[:500]
    return phone.client.post(action.group(1).replace("&amp;", "&"), data=fields)


def _guide_of(ctx: Context, r: httpx.Response) -> str | None:
    assert r.url.path.startswith("/m/s/"), r.text[:400]
    return C.by_token(ctx, r.url.path.rsplit("/", 1)[1]).guide_id


def test_join_credits_the_link_then_the_sharer_then_the_customers_guide(site: tuple[Context, str]) -> None:  # noqa: F811
    ctx, base = site
    _world(ctx)
    cid = live(ctx, assist())
    other = live(ctx, assist(name="另一个活动"))
    admin, guide = _login(base, "boss"), _login(base, "wang")

    # the API: an operator names the guide; a guide gets only their own link; unknown guides are refused
    link = httpx.get(f"{base}/api/campaigns/{cid}/guide-link", params={"guide_id": "g1"}, headers=admin).json()
    assert link["guide_id"] == "g1" and link["url"] == base + link["path"] and "?g=" in link["path"]
    own = httpx.get(f"{base}/api/campaigns/{cid}/guide-link", headers=guide).json()
    assert own["path"] == link["path"]
    assert httpx.get(f"{base}/api/campaigns/{cid}/guide-link?guide_id=g2", headers=guide).status_code == 403
    assert httpx.get(f"{base}/api/campaigns/{cid}/guide-link?guide_id=gX", headers=admin).status_code == 404
    assert httpx.get(f"{base}/api/campaigns/{cid}/guide-link", headers=admin).status_code == 400

    # 1. the guide's link: person 7 (whose own WeCom guide is g2) came by g1's link → g1
    seven = Phone(ctx, base, 7)
    joined = _submit(seven, link["path"])
    assert _guide_of(ctx, joined) == "g1"
    token = joined.url.path.rsplit("/", 1)[1]

    # 2. invited by a sharer (no link guide): the sharer's guide, even though nobody else names one
    friend = Phone(ctx, base, 8)
    assert _guide_of(ctx, _submit(friend, f"/m/c/{cid}?from={token}")) == "g1"

    # 3. neither: the customer's current WeCom guide (active relation; the lost one does not count)
    seven_other = _submit(seven, f"/m/c/{other}")
    assert _guide_of(ctx, seven_other) == "g2"

    # nothing names a guide: none; a forged g= and a g= made for another campaign are ignored
    assert _guide_of(ctx, _submit(Phone(ctx, base, 9), f"/m/c/{other}")) is None
    forged = link["g"][:-2] + ("AA" if not link["g"].endswith("AA") else "BB")
    assert _guide_of(ctx, _submit(Phone(ctx, base, 10), f"/m/c/{cid}?g={forged}")) is None
    foreign = sign_guide(ctx, cid, "g3")
    assert _guide_of(ctx, _submit(Phone(ctx, base, 11), f"/m/c/{other}?g={foreign}")) is None

    # the leaderboard sees the credited joins
    board = {r["guide_id"]: r["participants"] for r in httpx.get(f"{base}/api/campaigns/{cid}/guides", headers=admin)
             .json()["items"]}  # fmt: skip
    assert board["g1"] == 2


def test_join_guide_reports_where_the_guide_came_from(site: tuple[Context, str]) -> None:  # noqa: F811
    ctx, _ = site
    _world(ctx)
    cid = live(ctx, assist())
    seed = C.join(ctx, B, cid, C.parse_identity("phone", "13900000001"), guide_id="g3", now=datetime.utcnow())
    seven = C.parse_identity("unionid", "union00007")
    assert join_guide(ctx, B, cid, seven, g=sign_guide(ctx, cid, "g1")) == ("g1", "link")
    assert join_guide(ctx, B, cid, seven, sharer_token=seed["token"]) == ("g3", "sharer")
    assert join_guide(ctx, B, cid, seven) == ("g2", "customer")
    assert join_guide(ctx, B, cid, C.parse_identity("external_userid", "wmSeven")) == ("g2", "customer")
    assert join_guide(ctx, B, cid, C.parse_identity("unionid", "nobody")) == (None, "none")
