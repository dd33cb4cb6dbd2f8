"""Moments (朋友圈) tasks against the local WeCom server over HTTP: add_moment_task with the guides' member ids and
the visible-to tags, the async job (get_moment_task_result) before and after it is done, completion per guide from
get_moment_list / get_moment_task after guides post in the app, targeting a segment's guides, the suggested posting
windows, field-naming validation and the guide's view."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from siyu.connectors.wecom.errors import WeComError
from siyu.domain import guide_work as rules
from siyu.domain.models import Role
from siyu.errors import Forbidden, SiyuError
from siyu.services.context import Context
from siyu.services.guide_work import inbox, moments
from siyu.services.wecom.config import client_for, get_config
from tests.test_wecom_ops_env import ADMIN, wecom_brand
from tests.wecom_server import actions

GUIDE1 = replace(ADMIN, username="g1", role=Role.GUIDE, guide_id="g1")
GUIDE2 = replace(ADMIN, username="g2", role=Role.GUIDE, guide_id="g2")


def test_publish_job_completion_and_views(ctx: Context) -> None:
    with wecom_brand(ctx, guides=3, per_guide=4, moment_job_delay=60) as env:
        with ctx.warehouse.transaction() as cur:  # a guide not (yet) on WeCom
            cur.execute("INSERT INTO guides (brand_id, guide_id, name) VALUES ('acme', 'g4', '导购4')")
        client = client_for(get_config(ctx, "acme"))
        t = moments.publish(
            ctx,
            ADMIN,
            client,
            "双11 预热",
            "今晚 9 点开抢",
            [{"type": "image", "media_id": "MEDIA_1"}, {"type": "link", "title": "会场", "url": "https://x.cn/a"}],
            guide_ids=["g1", "g2", "g4"],
            tag_ids=["etVIP", "etNOPE"],
        )
        # what WeCom received: the member ids of g1 and g2, the tags, WeCom's attachment shape
        job = env.srv.company.moment_jobs[t["jobid"]]
        assert job["senders"] == ["guide0001", "guide0002"] and job["tags"] == ["etVIP", "etNOPE"]
        assert job["attachments"][0] == {"msgtype": "image", "image": {"media_id": "MEDIA_1"}}
        assert job["attachments"][1]["link"] == {"title": "会场", "url": "https://x.cn/a"}
        # the job is not done yet (status 2): the task waits, g4 is reported
        assert t["status"] == "creating" and t["moment_id"] is None
        assert t["invalid"]["guides_without_userid"] == ["g4"]
        assert [g["guide_id"] for g in t["guides"]] == ["g1", "g2"]
        env.srv.advance(61)
        t = moments.refresh(ctx, ADMIN, t["id"], client)
        assert t["status"] == "created" and t["moment_id"] in env.srv.company.moments
        assert t["invalid"]["tag_ids"] == ["etVIP", "etNOPE"]  # the server has no such corp tags
        assert (t["done"], t["targets"], t["completion"]) == (0, 2, 0.0)

        # guide0001 posts in the app; the scheduled poll reads who posted (one list + one task call)
        assert actions.publish_moment(env.srv, t["moment_id"], "guide0001")
        assert not actions.publish_moment(env.srv, t["moment_id"], "guide0003")  # not a sender of this task
        before = (env.srv.counts["get_moment_list"], env.srv.counts["get_moment_task"])
        assert moments.poll_all(ctx) == {"acme": {"tasks": 1, "calls": 2}}
        assert (env.srv.counts["get_moment_list"], env.srv.counts["get_moment_task"]) == (before[0] + 1, before[1] + 1)
        t = moments.get_task(ctx, ADMIN, t["id"])
        posted = set(env.srv.company.moments[t["moment_id"]]["published"])  # the server's own record
        assert {g["userid"] for g in t["guides"] if g["status"] == "done"} == posted == {"guide0001"}
        assert (t["done"], t["completion"]) == (1, 0.5)

        # a guide sees only their own row; the pending task is in g2's inbox, not in g1's
        mine = moments.get_task(ctx, GUIDE1, t["id"])
        assert [g["guide_id"] for g in mine["guides"]] == ["g1"]
        assert [i["id"] for i in inbox.inbox(ctx, GUIDE2)["items"] if i["source"] == "moment"] == [t["id"]]
        assert not [i for i in inbox.inbox(ctx, GUIDE1)["items"] if i["source"] == "moment"]
        with pytest.raises(Forbidden):
            moments.publish(ctx, GUIDE1, client, "x", "y")

        # a segment's customers decide the guides: only guide0003's customers → only g3
        g3 = [e for u, e in sorted(env.srv.company.relations) if u == "guide0003"]
        seg = env.segment(g3[:2], "g3 的客户")
        s = moments.publish(ctx, ADMIN, client, "新品", "新品到店", segment_id=seg)
        assert env.srv.company.moment_jobs[s["jobid"]]["senders"] == ["guide0003"]
        assert [g["guide_id"] for g in s["guides"]] == ["g3"]
        listed = moments.list_tasks(ctx, ADMIN)
        assert [x["title"] for x in listed] == ["新品", "双11 预热"]
        assert [x["title"] for x in moments.list_tasks(ctx, GUIDE1)] == ["双11 预热"]

        # validation names the field; nothing reaches WeCom
        calls = env.srv.counts["add_moment_task"]
        bad = [
            ({"title": "a", "content": "", "attachments": []}, "content"),
            ({"title": "a", "content": "x", "attachments": [{"type": "image"}]}, "attachments[0].media_id"),
            ({"title": "a", "content": "x", "attachments": [{"type": "gif"}]}, "attachments[0]"),
            ({"title": "a", "content": "好" * 2001}, "content"),
            ({"title": "", "content": "x"}, "title"),
            ({"title": "a", "content": "x", "guide_ids": ["g9"]}, "guide_ids"),
        ]
        for kw, field in bad:
            with pytest.raises(SiyuError) as err:
                moments.publish(ctx, ADMIN, client, **kw)  # type: ignore[arg-type]
            assert err.value.field == field, (kw, err.value.message)
        assert env.srv.counts["add_moment_task"] == calls

        # WeCom's own limits hold on the server: get_moment_list over more than a month is refused
        with pytest.raises(WeComError) as werr:
            client.get_moment_list(1_700_000_000, 1_700_000_000 + 31 * 86400)
        assert werr.value.errcode == 40058
        client.close()


def test_suggested_posting_windows() -> None:
    tz = moments.gw.TZ
    noon = datetime(2026, 11, 11, 12, 0, tzinfo=tz)
    assert rules.next_window(noon, rules.DEFAULT_WINDOWS) == datetime(2026, 11, 11, 21, 0, tzinfo=tz)
    late = datetime(2026, 11, 11, 21, 30, tzinfo=tz)  # inside a window: now
    assert rules.next_window(late, rules.DEFAULT_WINDOWS) == late
    night = datetime(2026, 11, 11, 23, 0, tzinfo=tz)
    assert rules.next_window(night, rules.DEFAULT_WINDOWS) == datetime(2026, 11, 12, 6, 0, tzinfo=tz)
    with pytest.raises(SiyuError) as err:
        rules.check_windows(["21:00-22:00", "7am"])
    assert err.value.field == "windows[1]"


def test_suggested_times_follow_the_brand_windows(ctx: Context) -> None:
    from siyu.services import brands
    from siyu.services.guide_work import settings

    brands.create_brand(ctx, "acme", "Acme")
    noon_utc = datetime(2026, 11, 11, 4, 0, tzinfo=UTC).replace(tzinfo=None)  # 12:00 in Shanghai
    assert moments.suggested_times(ctx, "acme", noon_utc) == ["2026-11-11T21:00+08:00", "2026-11-12T06:00+08:00"]
    settings.set_settings(ctx, ADMIN, moment_windows=["12:30-13:00"])
    assert moments.suggested_times(ctx, "acme", noon_utc) == ["2026-11-11T12:30+08:00", "2026-11-12T12:30+08:00"]
