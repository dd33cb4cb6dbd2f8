"""WeCom's 联系客户统计 (get_user_behavior_data) against the local WeCom server: the server's documented rules
(≤ 30 days, ≤ 180 days old, ≤ 100 userids, userid or partyid, several members = their total), the sync (one call per
guide and 30-day window, CLI `siyu wecom behavior-sync`), and the scorecard over HTTP: reply time = WeCom's
avg_reply_time weighted by chats (checked by hand), ``reply_source`` wecom / events, reply share and 删除/拉黑."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta

import httpx
import pytest
from typer.testing import CliRunner

from siyu.api.app import create_app
from siyu.cli.main import app as cli
from siyu.connectors.wecom.errors import WeComError
from siyu.domain.models import Role
from siyu.services import brands
from siyu.services.context import Context
from siyu.services.guide_work import behavior
from siyu.services.guide_work import settings as gw
from siyu.services.wecom.config import client_for, get_config
from tests.support.live import live_server
from tests.test_wecom_ops_env import wecom_brand
from tests.wecom_server.routes_behavior import record

DAY = 86400


def _at(days_ago: int, hour: int = 12) -> float:
    d = gw.local_day() - timedelta(days=days_ago)
    return datetime.combine(d, time(hour), tzinfo=gw.TZ).timestamp()


def _reply_event(ctx: Context, customer_id: str, guide_id: str, at: datetime) -> None:
    """A guide's service reply as the chat ingest records it (``Message Replied``, purpose service)."""
    props = json.dumps({"purpose": "service", "guide_id": guide_id})
    with ctx.warehouse.transaction() as cur:
        cur.execute(
            "INSERT INTO identities (brand_id, id_type, id_value, customer_id) VALUES ('acme', 'user_id', ?, ?)",
            [f"u-{customer_id}", customer_id],
        )
        cur.execute(
            "INSERT INTO events (brand_id, message_id, type, event, user_id, properties, timestamp, received_at) "
            "VALUES ('acme', 'm-reply-1', 'track', 'Message Replied', ?, ?, ?, ?)",
            [f"u-{customer_id}", props, at, at],
        )


def test_server_rules_and_totals(ctx: Context) -> None:
    with wecom_brand(ctx, guides=2, per_guide=1) as env:
        c = client_for(get_config(ctx, "acme"))
        try:
            record(env.srv, "guide0001", _at(2), chats=4, messages=20, started=4, replied=3, reply_minutes=30)
            record(env.srv, "guide0002", _at(2), chats=1, messages=2, started=2, replied=1, reply_minutes=90)
            t0, t1 = int(_at(3, 15)), int(_at(2, 23))  # not midnights: floored to 0:00
            one = c.get_user_behavior_data(["guide0001"], t0, t1)
            assert [r["stat_time"] for r in one] == [int(_at(3, 0)), int(_at(2, 0))]
            assert one[0] == {
                "stat_time": int(_at(3, 0)),
                "chat_cnt": 0,
                "message_cnt": 0,
                "negative_feedback_cnt": 0,
                "new_apply_cnt": 0,
                "new_contact_cnt": 0,
            }  # no chats: no reply share, no reply time
            assert (one[1]["chat_cnt"], one[1]["reply_percentage"], one[1]["avg_reply_time"]) == (4, 75.0, 10)
            both = c.get_user_behavior_data(["guide0001", "guide0002"], t1, t1)  # their TOTAL, not per member
            assert (both[0]["chat_cnt"], both[0]["reply_percentage"], both[0]["avg_reply_time"]) == (5, 66.67, 30)
            assert c.get_user_behavior_data([], t1, t1, partyids=[1]) == both
            bad = [
                (["guide0001"], int(_at(32)), int(_at(2)), ()),  # 31 days: 30 inclusive is the most
                (["guide0001"], int(_at(181)), int(_at(175)), ()),  # older than 180 days
                (["guide0001"], t1, t0, ()),  # end before start
                (["nobody"], t0, t1, ()),
                ([], t0, t1, [7]),
            ]
            for users, a, b, parties in bad:
                with pytest.raises(WeComError) as err:
                    c.get_user_behavior_data(users, a, b, parties)
                assert err.value.errcode in (40058, 60111, 60123), err.value
            assert c.get_user_behavior_data(["guide0001"], int(_at(30)), int(_at(1)))  # exactly 30 days
            tok = httpx.get(
                f"{env.wecom}/cgi-bin/gettoken",
                params={"corpid": env.srv.company.corpid, "corpsecret": "contact-secret"},
            ).json()["access_token"]
            url = f"{env.wecom}/cgi-bin/externalcontact/get_user_behavior_data?access_token={tok}"
            for body, code, words in [
                ({"start_time": t0, "end_time": t1}, 40058, "userid and partyid cannot both be empty"),
                ({"userid": ["guide0001"] * 101, "start_time": t0, "end_time": t1}, 40058, "userid exceeds 100"),
                ({"userid": ["guide0001"], "start_time": t0}, 40058, "end_time missing"),
            ]:
                got = httpx.post(url, json=body).json()
                assert got["errcode"] == code and words in got["errmsg"], got
            with pytest.raises(ValueError):
                c.get_user_behavior_data([f"u{i}" for i in range(101)], t0, t1)
        finally:
            c.close()


def test_sync_and_scorecard(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    with wecom_brand(ctx, guides=3, per_guide=1) as env:
        with ctx.warehouse.transaction() as cur:  # a guide not on WeCom: reported, never asked for
            cur.execute("INSERT INTO guides (brand_id, guide_id, name) VALUES ('acme', 'g9', '导购9')")
        # g1: day A 10 chats at 12 min, day B 30 chats at 4 min → weighted (120 + 120) / 40 = 6.0 (plain mean 8)
        record(env.srv, "guide0001", _at(3), chats=10, started=10, replied=10, reply_minutes=120, negative=1)
        record(env.srv, "guide0001", _at(2), chats=30, started=40, replied=30, reply_minutes=120, negative=2)
        # g2: chats but customers never started one → no reply time from WeCom; its events figure stays
        record(env.srv, "guide0002", _at(2), chats=5, messages=9)
        record(env.srv, "guide0001", _at(40), chats=1000, started=1, replied=1, reply_minutes=1000)  # 40 days ago
        c = client_for(get_config(ctx, "acme"))
        try:
            with pytest.raises(Exception) as err:
                behavior.sync(ctx, "acme", c, days=181)
            assert getattr(err.value, "field", None) == "days"
            got = behavior.sync(ctx, "acme", c, days=45)  # two windows (30 + 15 days) per guide
        finally:
            c.close()
        assert got["calls"] == 6 and got["rows"] == 3 * 45 and got["skipped_no_wecom_userid"] == ["g9"]
        calls = env.srv.company.behavior_calls
        assert all(len(x["userid"]) == 1 for x in calls)  # one member per call: never a total
        assert sorted(x["userid"][0] for x in calls) == ["guide0001"] * 2 + ["guide0002"] * 2 + ["guide0003"] * 2
        assert all((x["end"] - x["start"]) // DAY + 1 <= 30 for x in calls)
        # idempotent: a second sync replaces the days, no duplicates
        env.srv.company.behavior_calls.clear()
        monkeypatch.setenv("SIYU_DATA_DIR", str(ctx.settings.data_dir))
        r = CliRunner().invoke(cli, ["wecom", "behavior-sync", "acme", "--days", "45"])
        assert r.exit_code == 0, r.output
        assert '"rows": 135' in r.output and len(env.srv.company.behavior_calls) == 6
        r = CliRunner().invoke(cli, ["wecom", "behavior-sync", "acme", "--days", "0"])
        assert r.exit_code != 0 and "days" in r.output

        # a Message Replied event for g2 (the event-based figure) — g2 keeps it, g1's comes from WeCom
        cid = env.customer_of(next(e for u, e in env.srv.company.relations if u == "guide0002"))
        with ctx.warehouse.transaction() as cur:  # g2 added the customer 5 days ago, replied 25 minutes later
            cur.execute(
                "UPDATE relations SET added_at = ? WHERE brand_id = 'acme' AND guide_id = 'g2'",
                [datetime.combine(gw.local_day() - timedelta(days=5), time(4))],
            )
        brands.create_user(ctx, "acme", "boss", "boss-password-1", Role.ADMIN)
        with live_server(create_app(ctx, with_console=False)) as base:
            h = {
                "Authorization": "Bearer "
                + httpx.post(f"{base}/api/auth/login", json={"username": "boss", "password": "boss-password-1"}).json()[
                    "token"
                ]
            }
            _reply_event(ctx, cid, "g2", datetime.combine(gw.local_day() - timedelta(days=5), time(4, 25)))
            d1 = gw.local_day() - timedelta(days=1)
            d0 = d1 - timedelta(days=9)
            card = httpx.get(f"{base}/api/guides/scorecard?start={d0}&end={d1}", headers=h, timeout=60)
            assert card.status_code == 200, card.text
            rows = {x["guide_id"]: x for x in card.json()["rows"]}
        g1, g2, g3 = rows["g1"], rows["g2"], rows["g3"]
        assert (g1["reply_minutes"], g1["reply_source"]) == (6.0, "wecom")
        # reply share weighted by chats: (100 % × 10 + 75 % × 30) / 40 = 81.25
        assert (g1["reply_percentage"], g1["negative_feedback"], g1["chats"]) == (81.25, 3, 40)
        assert (g2["reply_minutes"], g2["reply_source"], g2["chats"]) == (25.0, "events", 5)
        assert g2["reply_percentage"] is None
        assert (g3["reply_minutes"], g3["reply_source"], g3["chats"]) == (None, None, 0)
