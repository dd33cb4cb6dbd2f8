"""Campaign definition, validation messages and the pure rules (may help, tiers, depth, variants, pilot)."""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime
from typing import Any

import pytest

from siyu.domain.campaign import CampaignError, parse_campaign
from siyu.domain.campaign import rules as R
from siyu.domain.campaign.definition import Variant
from siyu.services.context import Context


def assist(**over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "kind": "assist",
        "name": "双11助力",
        "starts_at": "2026-11-01T00:00:00",
        "ends_at": "2026-11-12T00:00:00",
        "assist": {"tiers": [{"threshold": 3, "reward_id": "r1"}, {"threshold": 8, "pool": ["r2", "r3"]}]},
    }
    d.update(over)
    return d


def errors(data: Any) -> list[dict[str, str]]:
    with pytest.raises(CampaignError) as exc:
        parse_campaign(data)
    return exc.value.errors


def test_valid_assist_and_reward_ids() -> None:
    cd = parse_campaign(assist())
    assert cd.kind == "assist" and cd.reward_ids() == ["r1", "r2", "r3"]
    assert [t.threshold for t in cd.tiers()] == [3, 8]


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"assist": {"tiers": [{"threshold": 16, "reward_id": "r"}]}}, "assist.tiers.0.threshold", "max_threshold"),
        (
            {"assist": {"tiers": [{"threshold": 5, "reward_id": "r"}, {"threshold": 5, "reward_id": "s"}]}},
            "assist.tiers.1.threshold",
            "rise",
        ),
        ({"assist": {"tiers": [{"threshold": 5}]}}, "assist.tiers.0.reward_id", "either reward_id"),
        (
            {"assist": {"tiers": [{"threshold": 5, "reward_id": "r", "pool": ["x"]}]}},
            "assist.tiers.0.reward_id",
            "either",
        ),
        (
            {"assist": {"tiers": [{"threshold": 101, "reward_id": "r"}], "max_threshold": 100}},
            "assist.tiers.0.threshold",
            "less than or equal to 100",
        ),
        ({"assist": None}, "assist", "needs its 'assist' rules"),
        ({"gift": {"reward_id": "g"}}, "gift", "remove them"),
        ({"ends_at": "2026-10-01T00:00:00"}, "ends_at", "end after it starts"),
        ({"carrier": {"kind": "wecom_guide"}}, "carrier.channel_code_id", "channel code"),
        ({"carrier": {"kind": "sms"}}, "carrier.kind", "wecom_guide"),
        ({"timezone": "Mars/Base"}, "timezone", "Asia/Shanghai"),
        ({"variants": [{"id": "a"}, {"id": "a"}]}, "variants", "distinct id"),
        ({"pilot": {}}, "pilot.percent", "segment_id or a percent"),
        ({"colour": "red"}, "colour", "unknown field"),
        ({"budget": -5}, "budget", "greater than 0"),
    ],
)
def test_errors_name_the_field_and_the_fix(change: dict[str, Any], field: str, words: str) -> None:
    data = assist(**change)
    if change.get("assist", 1) is None:
        data.pop("assist")
    errs = errors(data)
    assert errs[0]["field"] == field, errs
    assert words in errs[0]["message"], errs


def test_raising_max_threshold_allows_up_to_100() -> None:
    cd = parse_campaign(assist(assist={"tiers": [{"threshold": 60, "reward_id": "r"}], "max_threshold": 100}))
    assert cd.tiers()[0].threshold == 60


def test_group_buy_and_gift_variants_override() -> None:
    gb = parse_campaign(
        assist(
            kind="group_buy",
            assist=None,
            group_buy={"team_size": 3, "initiator_reward_id": "big", "joiner_reward_id": "small"},
            variants=[{"id": "a"}, {"id": "b", "team_size": 5, "joiner_reward_id": "mid"}],
        )
    )
    assert gb.team_size("a") == 3 and gb.team_size("b") == 5
    assert gb.team_rewards("a") == ("big", "small") and gb.team_rewards("b") == ("big", "mid")
    errs = errors(assist(variants=[{"id": "a", "team_size": 4}]))
    assert errs[0]["field"] == "variants.0"


def test_may_help_reasons_in_order() -> None:
    cd = parse_campaign(assist(regions=["广东", "浙江省"], anti_abuse={"device_per_day": 2, "ip_per_hour": 5}))
    base = R.HelpAttempt(frozenset({"c:h"}), frozenset({"c:s"}), False, 0, 0, 0, "广东省")
    assert R.may_help(cd, base).ok
    cases = {
        "self_help": {"helper_keys": frozenset({"c:s", "i:phone:+86"})},
        "already_helped": {"already_helped": True},
        "device_limit": {"device_today": 2},
        "ip_limit": {"ip_last_hour": 5},
        "person_limit": {"person_today": 10},
        "region": {"region": "北京"},
        "sharer_done": {"sharer_complete": True},
    }
    for code, kw in cases.items():
        d = R.may_help(cd, R.HelpAttempt(**{**base.__dict__, **kw}))
        assert (d.ok, d.code) == (False, code)
        assert d.zh and d.en and d.message("en") == R.REASONS[code][1]
    assert not R.may_help(cd, R.HelpAttempt(**{**base.__dict__, "region": None})).ok  # unknown region refused
    assert R.may_help(parse_campaign(assist()), R.HelpAttempt(**{**base.__dict__, "region": None})).ok


def test_window_and_pilot_status() -> None:
    cd = parse_campaign(assist())  # 2026-11-01 00:00 Shanghai = 2026-10-31 16:00 UTC
    assert R.open_for("live", cd, datetime(2026, 10, 31, 15, 59), True).code == "not_started"
    assert R.open_for("live", cd, datetime(2026, 10, 31, 16, 0), True).ok
    assert R.open_for("live", cd, datetime(2026, 11, 11, 16, 0), True).code == "ended"
    assert R.open_for("draft", cd, datetime(2026, 11, 2), True).code == "not_open"
    assert R.open_for("pilot", cd, datetime(2026, 11, 2), False).code == "not_in_pilot"
    assert R.open_for("pilot", cd, datetime(2026, 11, 2), True).ok


def test_tiers_team_depth() -> None:
    tiers = parse_campaign(assist()).tiers()
    assert R.tiers_reached(tiers, 0, 2) == []
    assert R.tiers_reached(tiers, 2, 3) == [0]
    assert R.tiers_reached(tiers, 0, 9) == [0, 1]
    assert R.next_tier(tiers, 3) == (1, 5) and R.next_tier(tiers, 8) is None
    assert R.assist_complete(tiers, 8) and not R.assist_complete(tiers, 7)
    assert R.team_complete(3, 3) and not R.team_complete(3, 2)
    assert R.child_depth(None) == 0 and R.child_depth(0) == 1 and R.child_depth(4) == 5


def test_variant_assignment_is_stable_and_weighted() -> None:
    vs = [Variant(id="a", weight=1), Variant(id="b", weight=3)]
    got = Counter(R.assign_variant(vs, f"c:{i}", "camp") for i in range(8000))
    assert got["a"] + got["b"] == 8000
    # binomial(8000, 0.25): sd ≈ 38.7; 5 sd
    assert abs(got["a"] - 2000) < 5 * 38.7
    assert R.assign_variant(vs, "c:42", "camp") == R.assign_variant(vs, "c:42", "camp")
    assert R.assign_variant([], "c:1", "camp") is None
    inside = sum(R.in_pilot_percent(10, f"c:{i}", "camp") for i in range(10000))
    assert abs(inside - 1000) < 5 * 30
    assert all(
        R.in_pilot_percent(20, f"c:{i}", "camp") for i in range(2000) if R.in_pilot_percent(10, f"c:{i}", "camp")
    )


def test_migration_matches_models(ctx: Context) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import siyu.stores.state.campaign_models  # noqa: F401
    from siyu.stores.state.models import Base

    with ctx.engine.connect() as con:
        diff = compare_metadata(MigrationContext.configure(con), Base.metadata)
    mine = [d for d in diff if re.match(r"\('\w+', (Table\('campaign|Index\('\w*campaign)", str(d))]
    mine += [d for d in diff if isinstance(d, list) or (len(d) > 2 and str(d[2]).startswith("campaign"))]
    assert mine == []


def _poster(**el: Any) -> dict[str, Any]:
    """A small valid template whose third element takes ``el`` overrides."""
    return {
        "width": 750,
        "height": 1334,
        "background": "#FFFFFF",
        "elements": [
            {"kind": "title", "x": 40, "y": 40, "width": 600, "height": 100},
            {"kind": "qr", "x": 40, "y": 900, "size": 200},
            {"kind": "text", "x": 40, "y": 300, "width": 600, "height": 80, "text": "限时", **el},
        ],
    }


def test_posters_are_checked_with_the_poster_parser_and_named_in_the_definition() -> None:
    ok = parse_campaign(assist(poster=_poster(), variants=[{"id": "A"}, {"id": "B", "poster": _poster(size=40)}]))
    assert ok.poster is not None and ok.variants[1].poster is not None
    # a variant's broken poster: the field path runs from the definition into the template
    errs = errors(assist(variants=[{"id": "A"}, {"id": "B", "poster": _poster(size=2)}]))
    assert errs[0]["field"] == "variants[1].poster.elements[2].size", errs
    assert "greater than or equal to 8" in errs[0]["message"]
    # the campaign-level poster; an element past the canvas; a template that is not one at all
    errs = errors(assist(poster=_poster(width=900)))
    assert errs[0]["field"] == "poster.elements[2].width" and "canvas width" in errs[0]["message"], errs
    errs = errors(assist(poster={"width": 750, "elements": [{"kind": "star"}]}))
    assert errs[0]["field"] == "poster.elements[0].kind" and "qr" in errs[0]["message"], errs
    # poster problems come together with the other problems of the definition
    errs = errors(assist(budget=-1, variants=[{"id": "A", "poster": _poster(color="red")}]))
    assert {e["field"] for e in errs} == {"variants[0].poster.elements[2].color", "budget"}, errs
    # a definition stored before the check still reads back (the public poster falls back), but not when saved
    stored = assist(variants=[{"id": "A", "poster": _poster(size=2)}])
    assert parse_campaign(stored, strict=False).variants[0].poster is not None


def test_official_account_carrier_is_refused_until_its_connector_exists() -> None:
    errs = errors(assist(carrier={"kind": "official_account", "appid": "wx123"}))
    assert errs[0]["field"] == "carrier.kind" and "connector" in errs[0]["message"], errs
    group = parse_campaign(assist(carrier={"kind": "wecom_group", "chat_id": "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA"}))
    assert group.carrier.kind == "wecom_group"


def test_the_public_poster_is_the_variants_else_the_campaigns_else_the_default() -> None:
    from siyu.domain.poster import default_template
    from siyu.public.poster_data import template_of

    own = _poster()
    own["background"] = "#112233"
    cd = parse_campaign(assist(poster=_poster(), variants=[{"id": "A"}, {"id": "B", "poster": own}]))
    assert template_of(cd, "B").background == "#112233"
    assert template_of(cd, "A").background == "#FFFFFF" == template_of(cd, None).background
    assert template_of(parse_campaign(assist()), None) == default_template()
    # stored before the check with a broken variant poster: the campaign's poster is drawn instead
    stored = parse_campaign(assist(poster=_poster(), variants=[{"id": "A", "poster": _poster(size=2)}]), strict=False)
    assert template_of(stored, "A").background == "#FFFFFF"


def test_builder_form_rows_round_trip_to_the_definition() -> None:
    """The builder's A/B and guide-target rows give back the definition (other variant keys such as the poster kept);
    number fields from the browser (floats, blanks) become whole numbers / 0."""
    from siyu.console.campaign_builder import definition_of, form_of

    src = assist(
        variants=[{"id": "A", "weight": 2, "poster": _poster()}, {"id": "B", "copy_text": "B 文案"}],
        guide_targets=[{"guide_id": "g1", "participants": 3, "gmv": 500}],
    )
    f = form_of(src)
    f["variants"][1]["weight"] = 3.0  # ui.number gives floats
    blank = {"guide_id": "g2", "participants": 1.0, "new_customers": None, "conversions": "", "gmv": 0}
    f["guide_targets"].append(blank)
    cd = parse_campaign(definition_of(f))
    assert [(v.id, v.weight, v.copy_text, v.poster is not None) for v in cd.variants] == [
        ("A", 2, "", True),
        ("B", 3, "B 文案", False),
    ]
    assert [(t.guide_id, t.participants, t.new_customers, t.gmv) for t in cd.guide_targets] == [
        ("g1", 3, 0, 500),
        ("g2", 1, 0, 0),
    ]
    # a blank variant id is named on its row
    f["variants"][0]["id"] = ""
    assert errors(definition_of(f))[0]["field"] == "variants.0.id"
