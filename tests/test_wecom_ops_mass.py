"""Mass sends (群发) to a segment against the local WeCom server over HTTP: the daily cap before sending, tasks
per guide chunked to WeCom's limits, fail_list, guide confirmation and per-recipient results, idempotent re-run."""

from __future__ import annotations

import time

import pytest

from siyu.errors import SiyuError
from siyu.services import messaging
from siyu.services.context import Context
from siyu.services.wecom import mass_send
from tests.test_wecom_ops_env import ADMIN, wecom_brand
from tests.wecom_server import actions


def test_cap_tasks_confirmation_and_results(ctx: Context) -> None:
    with wecom_brand(ctx, guides=3, per_guide=20) as env:
        rel = sorted(env.srv.company.relations)  # (userid, ext)
        g1 = [e for u, e in rel if u == "guide0001"][:6]
        g2 = [e for u, e in rel if u == "guide0002"][:4]
        seg_a = env.segment(g1[:3], "首批")
        first = mass_send.create(ctx, ADMIN, seg_a, "双11 早鸟价", idempotency_key="k1")
        assert first["totals"] == {"queued": 3} and first["status"] == "dispatched"
        assert [(t["guide_id"], t["targets"], t["status"]) for t in first["tasks"]] == [("g1", 3, "created")]

        # a customer deleted guide0002 in WeCom after siyu's sync: WeCom answers them in fail_list
        actions.customer_deletes(env.srv, "guide0002", g2[0])
        seg_b = env.segment(g1 + g2, "第二批")
        calls = env.srv.counts["add_msg_template"]
        second = mass_send.create(ctx, ADMIN, seg_b, "会员日提醒", idempotency_key="k2")
        # the 3 customers of the first send already had today's 1 message: capped, never sent
        assert second["totals"] == {"capped": 3, "queued": 6, "failed": 1}
        assert sorted(c["customer_id"] for c in second["capped_sample"]) == sorted(env.customer_of(e) for e in g1[:3])
        assert env.srv.counts["add_msg_template"] == calls + 2  # one task per guide
        made = {t["guide_id"]: set(env.srv.company.templates[t["msgid"]]["targets"]) for t in second["tasks"]}
        assert made == {"g1": set(g1[3:]), "g2": set(g2[1:])}  # the fail_list customer is not a target

        # idempotent: the same key returns the same send; dispatch again creates nothing
        again = mass_send.create(ctx, ADMIN, seg_b, "会员日提醒", idempotency_key="k2")
        assert again["id"] == second["id"]
        mass_send.dispatch(ctx, ADMIN, second["id"])
        assert env.srv.counts["add_msg_template"] == calls + 2

        # not confirmed yet: WeCom reports nothing sent
        view = mass_send.refresh(ctx, ADMIN, second["id"])
        assert [t["confirmed"] for t in view["tasks"]] == [False, False]
        # guide0002 confirms in the app, after another customer left them
        actions.customer_deletes(env.srv, "guide0002", g2[1])
        t2 = next(t for t in view["tasks"] if t["guide_id"] == "g2")
        actions.confirm_mass_send(env.srv, t2["msgid"])
        view = mass_send.refresh(ctx, ADMIN, second["id"])
        t2 = next(t for t in view["tasks"] if t["guide_id"] == "g2")
        assert t2["confirmed"] and t2["stats"] == {"sent": 2, "not_contact": 1, "failed": 1}
        t1 = next(t for t in view["tasks"] if t["guide_id"] == "g1")
        assert not t1["confirmed"] and t1["stats"] == {"queued": 3}
        assert view["totals"] == {"capped": 3, "queued": 3, "sent": 2, "not_contact": 1, "failed": 1}

        # raising the brand's cap to 2/day lets the capped customers receive one more today
        messaging.set_marketing_cap(ctx, ADMIN, 2)
        third = mass_send.create(ctx, ADMIN, seg_a, "加推", idempotency_key="k3")
        assert third["totals"] == {"queued": 3}


def test_content_limit_and_roles(ctx: Context) -> None:
    from dataclasses import replace

    from siyu.domain.models import Role
    from siyu.services.errors import Forbidden

    with wecom_brand(ctx, guides=1, per_guide=3) as env:
        seg = env.segment([e for _, e in env.srv.company.relations][:2])
        with pytest.raises(SiyuError) as err:
            mass_send.create(ctx, ADMIN, seg, "好" * 1334)  # 4,002 bytes in UTF-8
        assert err.value.field == "content" and "4002 bytes" in err.value.message and "4000" in err.value.message
        mass_send.check_content("好" * 1333, [])  # 3,999 bytes pass
        with pytest.raises(SiyuError, match="chat_type"):
            mass_send.create(ctx, ADMIN, seg, "hi", chat_type="moments")
        with pytest.raises(Forbidden):
            mass_send.create(ctx, replace(ADMIN, role=Role.GUIDE, guide_id="g1"), seg, "hi")
        assert env.srv.counts["add_msg_template"] == 0


def test_chunks_of_10000_per_guide(ctx: Context) -> None:
    t0 = time.perf_counter()
    with wecom_brand(ctx, guides=1, per_guide=10_050) as env:
        from siyu.services import segments

        seg = segments.create_segment(ctx, ADMIN, "全部", {"kind": "guide", "guides": ["g1"]}).id
        out = mass_send.create(ctx, ADMIN, seg, "全员通知")
        assert [(t["chunk"], t["targets"]) for t in out["tasks"]] == [(0, 10_000), (1, 50)]
        sizes = sorted(len(t["targets"]) for t in env.srv.company.templates.values())
        assert sizes == [50, 10_000] and out["totals"] == {"queued": 10_050}
    assert time.perf_counter() - t0 < 60


def test_group_send_error_retry_and_concurrent_cap(ctx: Context) -> None:
    import threading

    from siyu.services.wecom.groups import sync_groups

    with wecom_brand(ctx, guides=2, per_guide=6) as env:
        mine = [e for u, e in sorted(env.srv.company.relations) if u == "guide0001"]
        chats = [actions.add_group(env.srv, "guide0001", mine[i : i + 3]) for i in (0, 3)]
        actions.add_group(env.srv, "guide0002", [e for u, e in env.srv.company.relations if u == "guide0002"][:3])
        sync_groups(ctx, "acme")
        seg = env.segment(mine[:2], "群成员")  # both in the first group only

        # WeCom refuses the first try: the task is kept as error and the next dispatch creates it
        env.srv.inject("add_msg_template", 48002)
        out = mass_send.create(ctx, ADMIN, seg, "群公告", chat_type="group")
        assert out["status"] == "partial" and out["tasks"][0]["status"] == "error"
        assert "48002" in out["tasks"][0]["error"]
        assert mass_send.dispatch(ctx, ADMIN, out["id"]) == {"created": 1}
        assert mass_send.dispatch(ctx, ADMIN, out["id"]) == {}  # nothing left: never twice
        out = mass_send.get(ctx, ADMIN, out["id"])
        task = out["tasks"][0]
        assert (task["status"], task["targets"]) == ("created", 1) and out["status"] == "dispatched"
        assert env.srv.company.templates[task["msgid"]]["targets"] == [chats[0]]
        actions.confirm_mass_send(env.srv, task["msgid"])
        assert mass_send.refresh(ctx, ADMIN, out["id"])["totals"] == {"sent": 1}

        # eight concurrent sends to the same customers: each customer is sent at most once today (cap 1)
        seg2 = env.segment(mine, "并发")
        results: list[dict[str, int]] = []

        def go(i: int) -> None:
            results.append(mass_send.create(ctx, ADMIN, seg2, f"并发 {i}", idempotency_key=f"c{i}")["totals"])

        threads = [threading.Thread(target=go, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(r.get("queued", 0) for r in results) == len(mine)
        assert sum(r.get("capped", 0) for r in results) == 7 * len(mine)
