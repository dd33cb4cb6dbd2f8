"""Channel-code rules (pure): the 30-character state, round-robin with caps and fallback, welcome templates and
attachments, group rules."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from siyu.domain import channel_code as cc
from siyu.errors import SiyuError


@given(
    st.integers(0, 36**8 - 1),
    st.text(max_size=60),
    st.text(max_size=60),
    st.text(max_size=60),
)
def test_state_fits_30_chars_and_keeps_the_code_number(no: int, channel: str, campaign: str, guide: str) -> None:
    state = cc.make_state(no, channel, campaign, guide)
    assert len(state) <= 30
    parsed = cc.parse_state(state)
    assert parsed is not None and parsed.code_no == no
    for part, raw in ((parsed.channel, channel), (parsed.campaign, campaign), (parsed.guide, guide)):
        clean = "".join(c for c in raw if c.isascii() and (c.isalnum() or c in "_-"))
        assert clean.startswith(part)  # kept or shortened, never altered


def test_state_shortens_guide_then_campaign_then_channel() -> None:
    assert cc.make_state(35, "ch_store", "spring", "g1") == "cz.ch_store.spring.g1"
    long = cc.make_state(1, "channel_abcdefgh", "campaign_abcdefgh", "guide_abc")
    assert long == "c1.channel_abcdefgh.campaign_." and len(long) == 30
    assert cc.parse_state("ch_store") is None and cc.parse_state("cX!.a.b.c") is None  # not ours


def test_rotation_round_robin_caps_and_fallback() -> None:
    a, b = cc.GuideSlot("g1", "u1", 1), cc.GuideSlot("g2", "u2", 2)
    fb = cc.GuideSlot("g3", "u3")
    assert cc.rotation([a, b], {}, fb) == (["u1", "u2"], "round_robin")
    assert cc.rotation([a, b], {"g1": 1}, fb) == (["u2"], "single")
    assert cc.rotation([a, b], {"g1": 1, "g2": 2}, fb) == (["u3"], "fallback")
    assert cc.rotation([a, b], {"g1": 5, "g2": 2}, None) == (["u2"], "all_capped")  # highest cap keeps it
    assert cc.rotation([cc.GuideSlot("g1", "u1")], {"g1": 10_000}, None) == (["u1"], "single")  # no cap


def test_slots_are_validated() -> None:
    g = cc.GuideSlot("g1", "u1")
    with pytest.raises(SiyuError) as e:
        cc.validate_slots([], None)
    assert e.value.field == "guides"
    with pytest.raises(SiyuError) as e:
        cc.validate_slots([g, g], None)
    assert e.value.field == "guides"
    with pytest.raises(SiyuError) as e:
        cc.validate_slots([cc.GuideSlot("g1", "u1", 0)], None)
    assert e.value.field == "daily_cap"
    with pytest.raises(SiyuError) as e:
        cc.validate_slots([g], g)
    assert e.value.field == "fallback_guide_id"


def test_business_day_is_china_time() -> None:
    assert cc.business_day(datetime(2026, 3, 1, 16, 30)).isoformat() == "2026-03-02"  # 00:30 in Shanghai
    assert cc.business_day(datetime(2026, 3, 1, 15, 59)).isoformat() == "2026-03-01"


def test_welcome_template() -> None:
    assert (
        cc.render_welcome("{name}您好，我是{guide}，{coupon}", "张三", "王导购", "10元券")
        == "张三您好，我是王导购，10元券"
    )
    assert cc.render_welcome("Hi {name} {{x}}", "", "g") == "Hi 朋友 {x}"
    for bad, fld in [("hi {nickname}", "text"), ("hi {", "text"), ("字" * 1400, "text")]:
        with pytest.raises(SiyuError) as e:
            cc.validate_welcome(bad, [])
        assert e.value.field == fld
    ok = {"msgtype": "image", "image": {"media_id": "m1"}}
    cc.validate_welcome("{name}", [ok] * 9)
    with pytest.raises(SiyuError) as e:
        cc.validate_welcome("", [ok] * 9, reserve=1)  # one slot is kept for the group invite
    assert "8 attachments" in e.value.message
    with pytest.raises(SiyuError, match="miniprogram lacks pic_media_id, appid, page"):
        cc.validate_welcome("", [{"msgtype": "miniprogram", "miniprogram": {"title": "t"}}])
    with pytest.raises(SiyuError, match="media_id or pic_url"):
        cc.validate_welcome("", [{"msgtype": "image", "image": {}}])


def test_welcome_window() -> None:
    assert cc.welcome_left(1000, 1005) == 15
    assert cc.welcome_left(1000, 1021) < 0


def test_group_rules() -> None:
    rules = [
        cc.GroupRule(("sh",), "city", ("上海",)),
        cc.GroupRule(("run",), "interests", ("跑步", "Yoga")),
        cc.GroupRule(("all",)),
    ]
    assert cc.choose_group(rules, {"city": "上海"}) == 0
    assert cc.choose_group(rules, {"city": "北京", "interests": ["yoga", "阅读"]}) == 1
    assert cc.choose_group(rules, {}) == 2
    assert cc.choose_group(rules[:2], {"city": "北京"}) is None
    with pytest.raises(SiyuError):
        cc.validate_rules([cc.GroupRule(tuple("abcdef"))])  # ≤ 5 chats per join way
    with pytest.raises(SiyuError):
        cc.validate_rules([cc.GroupRule(("a",), "city")])  # an attribute needs values
