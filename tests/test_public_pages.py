"""Public mobile pages over real HTTP: people helping a sharer until tiers are reached, refusals with their reason
(Chinese, English with ?lang=en), the carrier step, a team filling up, a gift claimed, lottery and check-in,
sign-in by link token, CSRF and rate limits."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import pytest
import segno
from PIL import Image

from siyu.api.app import create_app
from siyu.public.visitor import link_token
from siyu.services import brands, engagement, rewards
from siyu.services import campaigns as C
from siyu.services.context import Context
from tests.support.live import live_server

B = "pub"
START = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0).isoformat()
END = (datetime.now(UTC) + timedelta(days=2, hours=3)).replace(microsecond=0).isoformat()


@pytest.fixture
def site(ctx: Context) -> Iterator[tuple[Context, str]]:
    brands.create_brand(ctx, B, "Public brand")
    for rid, name, stock in (
        ("r1", "满100减20券", None),
        ("r2", "保温杯", 5),
        ("p1", "香薰", None),
        ("p2", "抱枕", None),
        ("lead", "团长礼", None),
        ("join", "团员礼", None),
        ("card", "好友卡", None),
        ("prize", "幸运奖", 100),
        ("daily", "签到积分", None),
    ):
        rewards.create_reward(
            ctx,
            B,
            {"id": rid, "name": name, "kind": "coupon", "config": {"face_value": 10}, "unit_cost": 1.0, "stock": stock},
        )
    with live_server(create_app(ctx, with_console=False)) as base:
        yield ctx, base


def live(ctx: Context, d: dict[str, Any]) -> str:
    cid = C.create(ctx, B, d)["id"]
    C.launch(ctx, B, cid)
    return cid


def assist(**over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "kind": "assist",
        "name": "助力领好礼",
        "title": "邀请好友助力，免费领保温杯",
        "description": "活动期间邀请好友助力即可领取奖励。",
        "starts_at": START,
        "ends_at": END,
        "assist": {"tiers": [{"threshold": 2, "reward_id": "r1"}, {"threshold": 3, "pool": ["p1", "p2"]}]},
        "anti_abuse": {"device_per_day": 100, "ip_per_hour": 1000, "person_per_day": 100},
    }
    d.update(over)
    return d


class Phone:
    """One person's mobile browser: own cookies (session, device), signed in by a link token."""

    def __init__(self, ctx: Context, base: str, n: int, *, signed_in: bool = True) -> None:
        self.client = httpx.Client(base_url=base, follow_redirects=True, timeout=30)
        self.ctx = ctx
        self.n = n
        if signed_in:
            t = link_token(ctx, B, "unionid", f"union{n:05d}", nickname=f"用户{n}")
            r = self.client.get("/m/auth", params={"t": t, "next": "/m/"}, follow_redirects=False)
            assert r.status_code == 303 and "siyu_m" in r.cookies

    def get(self, path: str) -> httpx.Response:
        r = self.client.get(path)
        if r.headers.get("content-type", "").startswith("text/html"):
            check_light(r.text)
        return r

    def post_form(self, page: str, action: str | None = None, **fields: str) -> httpx.Response:
        """Open ``page``, take its CSRF token and post its form (to ``action``, default the form's own)."""
        html = self.get(page).text
        csrf = re.search(r'name="csrf" value="([^"]*)"', html)
        assert csrf, html
        if action is None:
            m = re.search(r'<form method="post" action="([^"]+)"', html)
            assert m
            action = m.group(1).replace("&amp;", "&")
        r = self.client.post(action, data={"csrf": csrf.group(1), **fields})
        check_light(r.text)
        return r


def check_light(html: str) -> None:
    """A public page: under 30 KB, no external assets (scripts, styles, images from elsewhere)."""
    assert len(html.encode()) < 30_000
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "<link" not in html


def data(html: str, name: str) -> str:
    m = re.search(rf'<main [^>]*data-{name}="([^"]*)"', html)
    assert m, (name, html[:500])
    return m.group(1)


def test_friends_help_a_sharer_until_both_tiers_are_reached(site: tuple[Context, str]) -> None:
    ctx, base = site
    cid = live(ctx, assist())
    sharer = Phone(ctx, base, 1)
    page = sharer.get(f"/m/c/{cid}")
    assert page.status_code == 200 and "邀请好友助力，免费领保温杯" in page.text
    assert "邀请 2 位好友助力，得「满100减20券」" in page.text and "距结束 2 天" in page.text
    r = sharer.post_form(f"/m/c/{cid}")
    assert r.url.path.startswith("/m/s/") and data(r.text, "counted") == "0"
    token = r.url.path.rsplit("/", 1)[1]
    participant = C.by_token(ctx, token)
    # three friends help; each sees their help counted and the sharer's count move
    for i in range(3):
        friend = Phone(ctx, base, 100 + i)
        assert data(friend.get(f"/m/h/{token}").text, "counted") == str(i)
        out = friend.post_form(f"/m/h/{token}")
        assert out.status_code == 200 and data(out.text, "state") == "counted", out.text
        assert "助力成功" in out.text and data(out.text, "counted") == str(i + 1)
    prog = C.progress(ctx, B, participant.id)
    assert prog["helps_counted"] == 3 and prog["complete"]
    # the sharer's page: count, the first tier's reward, and the pool choice of the second
    mine = sharer.get(f"/m/s/{token}")
    assert data(mine.text, "counted") == "3" and 'data-reward="r1"' in mine.text
    assert "香薰" in mine.text and 'name="reward_id" value="p2"' in mine.text
    chosen = sharer.post_form(f"/m/s/{token}", reward_id="p2", tier="1")
    assert chosen.url.path == f"/m/s/{token}" and 'data-reward="p2"' in chosen.text
    assert [(x["what"], x["reward_id"]) for x in C.progress(ctx, B, participant.id)["rewards"]] == [
        ("tier:0", "r1"),
        ("tier:1", "p2"),
    ]
    # every counted help traces back to the campaign, sharer and depth; the device and IP were recorded
    helps = C.helps(ctx, B, cid, state="counted")["items"]
    assert len(helps) == 3 and {(h["sharer_id"], h["depth"]) for h in helps} == {(participant.id, 1)}
    assert all(h["ip"] == "127.0.0.1" and h["device_id"] for h in helps)
    # a friend opening the sharer's page is sent to the help page; the sharer opening the help page to theirs
    assert Phone(ctx, base, 100).get(f"/m/s/{token}").url.path == f"/m/h/{token}"
    assert sharer.get(f"/m/h/{token}").url.path == f"/m/s/{token}"
    # the poster: a 750×1334 PNG whose QR code is this sharer's help link
    png = sharer.get(f"/m/poster/{token}.png")
    assert png.headers["content-type"] == "image/png"
    img = Image.open(io.BytesIO(png.content))
    assert img.size == (750, 1334)
    check_poster_qr(img, f"{base}/m/h/{token}")
    assert C.visits(ctx, B, cid)  # page views were counted


def check_poster_qr(img: Image.Image, url: str) -> None:
    from siyu.domain.poster import default_template
    from siyu.services import posters

    el = next(e for e in default_template().elements if e.kind == "qr")
    want = [list(row) for row in segno.make_qr(url, error="m", mask=posters.QR_MASK).matrix]
    place = posters.qr_placement(el, len(want) + 2 * el.border)
    px = np.asarray(img.convert("L"))
    off = el.border * place.scale + place.scale // 2
    seen = [
        [int(px[place.top + off + r * place.scale, place.left + off + c * place.scale] < 128) for c in range(len(want))]
        for r in range(len(want))
    ]
    assert seen == want


def test_campaign_page_shows_the_visitors_variant_and_then_their_poster(site: tuple[Context, str]) -> None:
    ctx, base = site
    variants = [
        {"id": "A", "weight": 0, "title": "A 版：助力领券", "copy_text": "A 版文案"},
        {"id": "B", "weight": 1, "title": "B 版：助力领杯", "copy_text": "B 版文案：三位好友即可"},
    ]
    cid = live(ctx, assist(variants=variants))
    me = Phone(ctx, base, 7)
    html = me.get(f"/m/c/{cid}").text
    assert "B 版：助力领杯" in html and "B 版文案：三位好友即可" in html and "A 版" not in html
    token = me.post_form(f"/m/c/{cid}").url.path.rsplit("/", 1)[1]
    assert C.by_token(ctx, token).variant == "B"
    html = me.get(f"/m/c/{cid}?lang=en").text
    assert f'src="/m/poster/{token}.png"' in html and "See my progress" in html
    assert me.get(f"/m/poster/{token}.png").headers["content-type"] == "image/png"


def test_an_ended_campaign_invites_nobody_to_take_part(site: tuple[Context, str]) -> None:
    ctx, base = site
    cid = live(ctx, assist())
    token = Phone(ctx, base, 1).post_form(f"/m/c/{cid}").url.path.rsplit("/", 1)[1]
    anon, friend = Phone(ctx, base, 2, signed_in=False), Phone(ctx, base, 3)
    assert "请从微信中打开" in anon.get(f"/m/c/{cid}").text and "请从微信中打开" in anon.get(f"/m/h/{token}").text
    C.end(ctx, B, cid)
    for who in (anon, friend):
        for path in (f"/m/c/{cid}", f"/m/h/{token}"):
            html = who.get(path).text
            assert "活动已结束" in html and "请从微信中打开" not in html and "<form" not in html, (path, html)


def test_refusals_show_their_reason_in_chinese_and_english(site: tuple[Context, str]) -> None:
    ctx, base = site
    cid = live(ctx, assist())
    sharer = Phone(ctx, base, 1)
    token = sharer.post_form(f"/m/c/{cid}").url.path.rsplit("/", 1)[1]
    # self-help: the sharer posts the help form of their own link
    page = sharer.get(f"/m/s/{token}").text
    csrf = re.search(r'<meta name="csrf" content="([^"]*)"', page)
    assert csrf
    r = sharer.client.post(f"/m/h/{token}", data={"csrf": csrf.group(1)})
    assert data(r.text, "reason") == "self_help" and "不能为自己助力" in r.text
    friend = Phone(ctx, base, 200)
    assert data(friend.post_form(f"/m/h/{token}").text, "state") == "counted"
    again = friend.post_form(f"/m/h/{token}?lang=en")
    assert data(again.text, "reason") == "already_helped"
    assert "You have already helped in this campaign" in again.text and 'lang="en"' in again.text
    zh = friend.post_form(f"/m/h/{token}")
    assert "你已经为本活动助力过了" in zh.text
    # the refusals are recorded with their reason
    rejected = C.helps(ctx, B, cid, state="rejected")["items"]
    assert sorted(h["reason"] for h in rejected) == ["already_helped", "already_helped", "self_help"]
    # no CSRF token: refused before anything happens
    bad = friend.client.post(f"/m/h/{token}", data={"csrf": "forged"})
    assert bad.status_code == 403 and "页面已过期" in bad.text
    # not signed in: the page says how to take part, and a post cannot help
    anon = Phone(ctx, base, 300, signed_in=False)
    assert "请从微信中打开" in anon.get(f"/m/h/{token}").text
    assert anon.client.post(f"/m/h/{token}", data={"csrf": ""}).status_code == 403
    # a forged or tampered link token does not sign anyone in
    t = link_token(ctx, B, "unionid", "union99999")
    assert anon.client.get("/m/auth", params={"t": t[:-2] + "xx"}).status_code == 403
    assert len(C.helps(ctx, B, cid)["items"]) == 4


def test_posts_are_rate_limited_per_device(site: tuple[Context, str]) -> None:
    ctx, base = site
    cid = live(ctx, assist())
    token = Phone(ctx, base, 1).post_form(f"/m/c/{cid}").url.path.rsplit("/", 1)[1]
    friend = Phone(ctx, base, 2)
    page = friend.get(f"/m/h/{token}").text
    csrf = re.search(r'name="csrf" value="([^"]*)"', page)
    assert csrf
    codes = [friend.client.post(f"/m/h/{token}", data={"csrf": csrf.group(1)}).status_code for _ in range(14)]
    assert codes[:10] == [200] * 10 and 429 in codes[10:]
    assert "操作太频繁" in friend.client.post(f"/m/h/{token}", data={"csrf": csrf.group(1)}).text


def test_carrier_step_shows_the_guides_channel_code_until_the_add(site: tuple[Context, str]) -> None:
    from siyu.stores.state.channel_code_models import ChannelCodeRow

    ctx, base = site
    qr_url = "https://work.weixin.qq.com/ca/cawcde0123456789abcdef"
    with ctx.sessions() as s, s.begin():
        code = ChannelCodeRow(brand_id=B, name="活动码", channel_id="fission", state="c1", qr_code=qr_url)
        s.add(code)
        s.flush()
        code_id = code.id
    cid = live(ctx, assist(carrier={"kind": "wecom_guide", "channel_code_id": code_id}))
    token = Phone(ctx, base, 1).post_form(f"/m/c/{cid}").url.path.rsplit("/", 1)[1]
    friend = Phone(ctx, base, 2)
    out = friend.post_form(f"/m/h/{token}")
    assert data(out.text, "state") == "pending_carrier" and 'data-carrier="wecom_guide"' in out.text
    assert "添加导购企业微信" in out.text
    qr = friend.get(f"/m/cq/{cid}.png")
    assert qr.status_code == 200
    img = np.asarray(Image.open(io.BytesIO(qr.content)).convert("L"))
    want = segno.make(qr_url, error="m")
    scale, border = 8, 2
    seen = [
        [int(img[(border + r) * scale + 4, (border + c) * scale + 4] < 128) for c in range(want.symbol_size(1, 0)[0])]
        for r in range(want.symbol_size(1, 0)[1])
    ]
    assert seen == [list(row) for row in want.matrix]
    assert data(friend.get(f"/m/h/{token}").text, "counted") == "0"
    # the friend adds the guide (the WeCom add callback calls confirm_carrier): the help counts
    assert C.confirm_carrier(ctx, B, [C.parse_identity("unionid", "union00002")], code_id=code_id) == 1
    assert data(friend.get(f"/m/h/{token}").text, "counted") == "1"


def test_a_team_fills_up_and_closes(site: tuple[Context, str]) -> None:
    ctx, base = site
    cid = live(
        ctx,
        {
            "kind": "group_buy",
            "name": "三人成团",
            "starts_at": START,
            "ends_at": END,
            "group_buy": {"team_size": 3, "team_hours": 24, "initiator_reward_id": "lead", "joiner_reward_id": "join"},
        },
    )
    leader = Phone(ctx, base, 1)
    r = leader.post_form(f"/m/c/{cid}")
    assert r.url.path.startswith("/m/t/") and data(r.text, "slots") == "2"
    team = r.url.path
    assert "还差 2 人成团" in r.text and "团长得「团长礼」" in r.text
    # the leader cannot join their own team
    assert leader.get(team).text.count("<form") == 0
    first = Phone(ctx, base, 2).post_form(team)
    assert data(first.text, "members") == "2" and data(first.text, "slots") == "1"
    done = Phone(ctx, base, 3).post_form(team)
    assert data(done.text, "status") == "complete" and "拼团成功" in done.text
    late = Phone(ctx, base, 4)
    html = late.get(team).text
    assert "拼团成功" in html and "<form" not in html  # complete: nobody else can join
    t = C.get_team(ctx, B, team.rsplit("/", 1)[1])
    assert t["members"] == 3 and t["status"] == "complete"
    roles = {m["role"] for m in t["member_list"]}
    assert roles == {"initiator", "joiner"}
    issued = sorted(
        (x["reward_id"]) for m in t["member_list"] for x in C.progress(ctx, B, m["participant_id"])["rewards"]
    )
    assert issued == ["join", "join", "lead"]
    # the leader's campaign page now links to the team
    assert f'href="{team}"' in leader.get(f"/m/c/{cid}").text


def test_a_gift_is_claimed_once(site: tuple[Context, str]) -> None:
    ctx, base = site
    cid = live(
        ctx,
        {
            "kind": "gift",
            "name": "好友卡",
            "starts_at": START,
            "ends_at": END,
            "gift": {"reward_id": "card", "claim_hours": 48},
        },
    )
    giver = Phone(ctx, base, 1)
    r = giver.post_form(f"/m/c/{cid}")
    assert r.url.path.startswith("/m/g/") and data(r.text, "status") == "sent"
    gift = r.url.path
    assert "礼物已准备好" in r.text and "<form" not in r.text  # the giver cannot claim their own gift
    friend = Phone(ctx, base, 2)
    assert "好友送你一份礼物" in friend.get(gift).text
    claimed = friend.post_form(gift)
    assert data(claimed.text, "status") == "claimed" and "领取成功" in claimed.text
    other = Phone(ctx, base, 3)
    html = other.get(gift + "?lang=en").text
    assert "claimed" in html and "<form" not in html
    g = C.get_gift(ctx, gift.rsplit("/", 1)[1])
    assert g["status"] == "claimed" and g["grant_id"]
    assert rewards.get_reward(ctx, B, "card")["granted"] == 1  # type: ignore[index]


def test_lottery_and_check_in_pages(site: tuple[Context, str]) -> None:
    ctx, base = site
    lot = engagement.create_activity(
        ctx,
        B,
        "lottery",
        "双十一抽奖",
        {"prizes": [{"key": "a", "name": "幸运奖", "reward_id": "prize", "probability": 1.0}], "daily_limit": 1},
    )
    chk = engagement.create_activity(
        ctx, B, "checkin", "每日签到", {"daily_reward_id": "daily", "streak_rewards": [{"days": 3, "reward_id": "r1"}]}
    )
    me = Phone(ctx, base, 5)
    won = me.post_form(f"/m/l/{lot['id']}")
    assert data(won.text, "outcome") == "won" and "恭喜获得「幸运奖」" in won.text
    again = me.post_form(f"/m/l/{lot['id']}")
    assert again.status_code == 429 and "今日抽奖次数已用完" in again.text
    assert rewards.get_reward(ctx, B, "prize")["stock_left"] == 99  # type: ignore[index]
    page = me.get(f"/m/k/{chk['id']}")
    assert data(page.text, "today") == "0" and "连续签到 3 天可得「满100减20券」" in page.text
    done = me.post_form(f"/m/k/{chk['id']}")
    assert data(done.text, "streak") == "1" and data(done.text, "today") == "1" and "今日已签到" in done.text


def test_the_help_post_uses_oneids_answer_kept_at_sign_in(site: tuple[Context, str], monkeypatch: Any) -> None:
    """The help path asks the warehouse nothing while the session's OneID answer is fresh (a burst of helps needs
    no DuckDB look-up); past ``PERSON_COOKIE_TTL`` the person is asked again."""
    from siyu.public import visitor
    from siyu.services import oneid

    ctx, base = site
    cid = live(ctx, assist())
    sharer = Phone(ctx, base, 1)
    token = sharer.post_form(f"/m/c/{cid}").url.path.rsplit("/", 1)[1]
    friend, late = Phone(ctx, base, 400), Phone(ctx, base, 401)
    page, page_late = friend.get(f"/m/h/{token}").text, late.get(f"/m/h/{token}").text
    asked: list[str] = []
    real = oneid.customer_of

    def counting(c: Context, brand_id: str, ident: Any) -> str | None:
        asked.append(ident.value)
        return real(c, brand_id, ident)

    monkeypatch.setattr(oneid, "customer_of", counting)
    from siyu.services.campaigns import people

    people._people(ctx).items.clear()  # no process cache to fall back on either
    csrf = re.search(r'name="csrf" value="([^"]*)"', page)
    assert csrf
    r = friend.client.post(f"/m/h/{token}", data={"csrf": csrf.group(1)})
    assert data(r.text, "state") == "counted" and asked == []
    monkeypatch.setattr(visitor, "PERSON_COOKIE_TTL", -1)  # the answer kept at sign-in is now too old
    csrf = re.search(r'name="csrf" value="([^"]*)"', page_late)
    assert csrf
    r = late.client.post(f"/m/h/{token}", data={"csrf": csrf.group(1)})
    assert data(r.text, "state") == "counted" and asked == ["union00401"]
