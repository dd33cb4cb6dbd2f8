"""Journey WeCom sends against the local WeCom server over HTTP: a wecom_1to1 step makes exactly one
add_msg_template per customer (from their guide, to them alone) even when the delivery is repeated after a crash;
the daily marketing cap is one cap with SMS; group messages reach each group once; a wecom_mass step collects its
customers into one task per guide."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import select, update

from siyu.services import messaging
from siyu.services.context import Context
from siyu.services.journeys import definitions as jdef
from siyu.services.journeys.effects import deliver_effects
from siyu.services.journeys.entries import enter_customers
from siyu.services.journeys.executor import run_until_idle
from siyu.stores.state.journey_models import JourneyEffectRow
from siyu.stores.state.models import utcnow
from tests.sms_server import sms_server
from tests.test_wecom_ops_env import ADMIN, Env, wecom_brand
from tests.wecom_server import actions


def _journey(ctx: Context, channel: str, content: str) -> str:
    d = {
        "trigger": {"kind": "manual"},
        "start": "send",
        "nodes": [
            {"id": "send", "kind": "action", "action": {"type": "send", "channel": channel, "content": content}},
            {"id": "end", "kind": "exit"},
        ],
        "edges": [{"from": "send", "to": "end"}],
    }
    j = jdef.create_journey(ctx, ADMIN, f"{channel}-{uuid.uuid4().hex[:6]}", d)
    jdef.publish(ctx, ADMIN, j.id)
    return j.id


def _run(ctx: Context, journey_id: str, customers: list[str]) -> dict[str, Any]:
    now = utcnow()
    assert enter_customers(ctx, "acme", journey_id, [(c, "m") for c in customers], now) == len(customers)
    run_until_idle(ctx, now)
    return deliver_effects(ctx, now)


def _effects(ctx: Context, journey_id: str) -> dict[str, tuple[str, str | None]]:
    with ctx.sessions() as s:
        rows = s.execute(
            select(JourneyEffectRow.customer_id, JourneyEffectRow.status, JourneyEffectRow.error).where(
                JourneyEffectRow.journey_id == journey_id
            )
        ).all()
    return {str(c): (str(st), e) for c, st, e in rows}


def _templates(env: Env, content: str) -> list[dict[str, Any]]:
    return [t for t in env.srv.company.templates.values() if t["content"] == content]


def test_wecom_1to1_once_per_customer_and_one_cap_with_sms(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIYU_HUEY_CONSUMER", "off")
    with wecom_brand(ctx, guides=2, per_guide=4) as env, sms_server() as vendor:
        settings = {"access_key_id": "testid", "access_key_secret": "testsecret", "sign_name": "思域测试"}
        messaging.set_provider(ctx, ADMIN, "sms", "aliyun", {**settings, "endpoint": vendor.url})
        rel = sorted(env.srv.company.relations)  # (userid, external_userid)
        owner = {env.customer_of(e): (u, e) for u, e in rel}
        customers = sorted(owner)
        sms_first = customers[0]  # got a marketing SMS today before the journey reaches them
        messaging.send(
            ctx,
            ADMIN,
            messaging.SendRequest(
                channel="sms",
                customer_id=sms_first,
                recipient="13800138000",
                purpose="marketing",
                template="SMS_1",
                params={"x": "1"},
            ),
            queue=False,
        )
        jid = _journey(ctx, "wecom_1to1", "您好，生日快乐")
        out = _run(ctx, jid, customers)
        sent = _templates(env, "您好，生日快乐")
        # exactly one add_msg_template per reachable customer: single chat, from the customer's guide, to them only
        assert len(sent) == len(customers) - 1 == env.srv.counts["add_msg_template"]
        assert sorted((t["sender"], t["targets"][0]) for t in sent) == sorted(owner[c] for c in customers[1:])
        assert all(t["chat_type"] == "single" and len(t["targets"]) == 1 for t in sent)
        effects = _effects(ctx, jid)
        assert out["done"] == len(customers) - 1
        assert effects[sms_first][0] == "failed" and "capped" in str(effects[sms_first][1])  # final: not retried

        # a worker killed after WeCom answered but before the effect was marked: the step is delivered again
        with ctx.sessions() as s, s.begin():
            s.execute(
                update(JourneyEffectRow).where(JourneyEffectRow.journey_id == jid).values(status="pending", attempts=0)
            )
        again = deliver_effects(ctx, utcnow())
        assert again["done"] == len(customers) - 1 and again["failed"] == 1
        assert env.srv.counts["add_msg_template"] == len(customers) - 1  # nothing sent twice

        # the other direction: the journey's WeCom message took today's slot, so a marketing SMS is refused
        with pytest.raises(messaging.CapReached):
            messaging.send(
                ctx,
                ADMIN,
                messaging.SendRequest(
                    channel="sms",
                    customer_id=customers[1],
                    recipient="13800138001",
                    purpose="marketing",
                    template="SMS_1",
                    params={"x": "1"},
                ),
                queue=False,
            )
        # and a second WeCom journey the same day reaches nobody (cap 1/day)
        jid2 = _journey(ctx, "wecom_1to1", "第二条")
        _run(ctx, jid2, customers[1:3])
        assert _templates(env, "第二条") == []
        assert {st for st, _ in _effects(ctx, jid2).values()} == {"failed"}


def test_wecom_group_once_per_group_and_mass_batch(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    from siyu.services.wecom.groups import sync_groups

    monkeypatch.setenv("SIYU_HUEY_CONSUMER", "off")
    with wecom_brand(ctx, guides=2, per_guide=6) as env:
        rel = sorted(env.srv.company.relations)
        mine = [e for u, e in rel if u == "guide0001"]
        chat_a = actions.add_group(env.srv, "guide0001", mine[:3])
        chat_b = actions.add_group(env.srv, "guide0001", mine[2:4])
        sync_groups(ctx, "acme")
        # four customers reach the step: the groups they are in get the message once each
        jid = _journey(ctx, "wecom_group", "群活动：周末沙龙")
        _run(ctx, jid, [env.customer_of(e) for e in mine[:4]])
        sent = _templates(env, "群活动：周末沙龙")
        assert sorted(c for t in sent for c in t["targets"]) == sorted([chat_a, chat_b])
        assert all(t["chat_type"] == "group" and t["sender"] == "guide0001" for t in sent)
        assert {st for st, _ in _effects(ctx, jid).values()} == {"done"}

        # wecom_mass: every customer of the step in one task per guide; a customer capped today is left out
        everyone = [env.customer_of(e) for _, e in rel]
        capped = env.customer_of(mine[5])
        jcap = _journey(ctx, "wecom_1to1", "先发一条")
        _run(ctx, jcap, [capped])
        jid = _journey(ctx, "wecom_mass", "双11 会员日")
        calls = env.srv.counts["add_msg_template"]
        out = _run(ctx, jid, everyone)
        sent = _templates(env, "双11 会员日")
        assert env.srv.counts["add_msg_template"] == calls + 2 and out["flushed"] == 2
        by_guide = {t["sender"]: sorted(t["targets"]) for t in sent}
        expected: dict[str, list[str]] = {}
        for u, e in rel:
            if env.customer_of(e) != capped:
                expected.setdefault(u, []).append(e)
        assert by_guide == {u: sorted(v) for u, v in expected.items()}
        effects = _effects(ctx, jid)
        assert Counter(st for st, _ in effects.values()) == Counter({"done": len(everyone) - 1, "failed": 1})
        assert "capped" in str(effects[capped][1])
        # delivering again (a crash before the effects were marked) sends nothing more
        with ctx.sessions() as s, s.begin():
            s.execute(
                update(JourneyEffectRow).where(JourneyEffectRow.journey_id == jid).values(status="pending", attempts=0)
            )
        deliver_effects(ctx, utcnow())
        assert env.srv.counts["add_msg_template"] == calls + 2
