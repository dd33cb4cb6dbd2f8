"""The WeCom client against the local WeCom server: tokens, retries, back-off, paging, errors, typed endpoints."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from siyu.connectors.wecom.client import WeComClient
from siyu.connectors.wecom.errors import WeComError
from siyu.connectors.wecom.limiter import Limits, RateLimiter
from siyu.connectors.wecom.transport import Backoff, Transport
from tests.wecom_server import WeComServer, actions, running, seed

CORP, SECRET = "wwlocal0000000001", "contact-secret"


@pytest.fixture
def srv() -> Iterator[tuple[WeComServer, str]]:
    s = WeComServer(token_ttl=7200)
    seed(s.company, guides=3, contacts_per_guide=40)
    with running(s) as base:
        yield s, base


def client(base: str, **kw: object) -> WeComClient:
    return WeComClient(Transport(CORP, SECRET, base, **kw))  # type: ignore[arg-type]


def test_token_refreshed_before_expiry(srv: tuple[WeComServer, str]) -> None:
    s, base = srv
    s.token_ttl = 2  # refresh at 2 - 2/5 = 1.6 s, before the server's expiry
    c = client(base)
    assert len(c.list_contacts("guide0001")) == 40
    time.sleep(1.7)
    assert len(c.list_contacts("guide0001")) == 40
    assert c.t.tokens.fetches == 2 and c.t.stats["token_refreshes"] == 0  # no 42001 was ever seen


def test_token_refetched_once_on_42001_and_40014(srv: tuple[WeComServer, str]) -> None:
    s, base = srv
    c = client(base)
    c.get_follow_user_list()
    s.expire_tokens()  # invalidated early: the next call meets 42001, refetches once, succeeds
    assert c.get_follow_user_list() == ["guide0001", "guide0002", "guide0003"]
    assert c.t.stats["token_refreshes"] == 1 and c.t.tokens.fetches == 2
    s.inject("list", 40014, times=2)  # invalid twice in a row: refetched once, then surfaced
    with pytest.raises(WeComError) as err:
        c.list_contacts("guide0001")
    assert err.value.errcode == 40014 and err.value.meaning == "invalid access_token"
    assert s.counts["list"] == 2


def test_busy_retried_three_times(srv: tuple[WeComServer, str]) -> None:
    s, base = srv
    c = client(base)
    s.inject("list", -1, times=3)
    assert len(c.list_contacts("guide0002")) == 40
    assert c.t.stats["busy_retries"] == 3
    s.inject("list", -1, times=4)
    with pytest.raises(WeComError) as err:
        c.list_contacts("guide0002")
    assert err.value.errcode == -1 and "busy" in str(err.value)


def test_backs_off_on_45009_and_45033(srv: tuple[WeComServer, str]) -> None:
    s, base = srv
    s.rate_limit, s.rate_window = 5, 1.0  # the server allows 5 calls per second per API
    c = client(base, backoff=Backoff(first=0.25, cap=1.0, attempts=6))
    t0 = time.monotonic()
    for _ in range(12):
        assert len(c.list_contacts("guide0003")) == 40
    assert c.t.stats["backoffs"] >= 2 and time.monotonic() - t0 >= 1.0
    s.inject("get_follow_user_list", 45033)
    assert c.get_follow_user_list()
    s.rate_limit = 0  # never allowed: gives up after the configured attempts with the meaning
    with pytest.raises(WeComError, match="frequency limit") as err:
        client(base, backoff=Backoff(first=0.01, cap=0.01, attempts=2)).list_contacts("guide0003")
    assert err.value.errcode == 45009 and "10,000/min" in err.value.action


def test_client_rate_limiter_windows() -> None:
    now = [0.0]
    lim = RateLimiter(
        Limits(per_minute=5, per_hour=8), clock=lambda: now[0], sleep=lambda d: now.__setitem__(0, now[0] + d)
    )
    stamps = []
    for _ in range(12):
        lim.acquire("list")
        stamps.append(now[0])
    for i, t in enumerate(stamps):
        assert sum(t - 60 < u <= t for u in stamps[: i + 1]) <= 5
        assert sum(t - 3600 < u <= t for u in stamps[: i + 1]) <= 8
    assert stamps[5] == 60.0 and stamps[8] == 3600.0


def test_paging_over_thousands() -> None:
    s = WeComServer()
    seed(s.company, guides=130, contacts_per_guide=40, shared=0.1)  # > 100 guides: two userid batches
    with running(s) as base:
        c = client(base)
        users = c.get_follow_user_list()
        got = [(r.follow.userid, r.contact.external_userid) for r in c.iter_contacts(users)]
    assert len(got) == len(set(got)) == len(s.company.relations) > 5_200
    assert set(got) == set(s.company.relations)
    per_batch = [sum(1 for u, _ in s.company.relations if u in users[i : i + 100]) for i in (0, 100)]
    assert s.counts["batch/get_by_user"] == sum(-(-n // 100) for n in per_batch)  # full pages of 100, no extra call
    assert c.t.stats["calls"] == 1 + s.counts["batch/get_by_user"]
    before = s.counts["batch/get_by_user"]
    with running(s) as base:  # the same records with 4 member batches (of 10) paged at once
        par = client(base)
        both = [(r.follow.userid, r.contact.external_userid) for r in par.iter_contacts_parallel(users, workers=4)]
    assert sorted(both) == sorted(got)
    assert par.t.stats["calls"] == s.counts["batch/get_by_user"] - before  # every call counted across threads


def test_errors_surface_meaning_and_action(srv: tuple[WeComServer, str]) -> None:
    s, base = srv
    c = client(base)
    way = c.add_contact_way(["guide0001"], state="store-12")
    _, _, code, _ = actions.scan(s, way.config_id)
    assert code
    c.send_welcome_msg(code, "欢迎光临")
    with pytest.raises(WeComError) as err:
        c.send_welcome_msg(code, "again")
    assert err.value.errcode == 41051 and err.value.action == "final: never retry"
    assert "41051 welcome message already sent" in str(err.value)
    with pytest.raises(WeComError) as err:
        c.add_contact_way(["guide0001"], state="s" * 31)
    assert err.value.errcode == 40058 and "state exceeds 30 chars" in err.value.errmsg
    with pytest.raises(WeComError) as err:
        c.get_contact("wmUnknown")
    assert err.value.errcode == 40096 and err.value.status_code == 502


def test_typed_endpoints(srv: tuple[WeComServer, str]) -> None:
    s, base = srv
    c = client(base)
    way = c.add_contact_way(["guide0001", "guide0002"], state="live-0420", remark="直播")
    assert c.get_contact_way(way.config_id)["state"] == "live-0420" and list(c.iter_contact_ways()) == [way.config_id]
    c.update_contact_way(way.config_id, state="live-0421")
    _, eid, _, _ = actions.scan(s, way.config_id)
    detail = c.get_contact(eid)
    assert detail.follow_users[0].state == "live-0421" and detail.follow_users[0].add_way == 1
    group = c.add_corp_tags(["门店", "直播"], group_name="渠道")
    c.mark_tag("guide0001", eid, add=[group.tags[0].id])
    assert c.get_contact(eid).follow_users[0].tag_ids == (group.tags[0].id,)
    assert [g.name for g in c.get_corp_tags()] == ["渠道"]
    c.edit_corp_tag(group.tags[1].id, name="直播间")
    assert {t.name for t in c.get_corp_tags()[0].tags} == {"门店", "直播间"}
    c.del_corp_tags(group_ids=[group.group_id])
    assert c.get_corp_tags() == []
    c.del_contact_way(way.config_id)
    eids = c.list_contacts("guide0001")[:2]
    chats = [actions.add_group(s, "guide0001", eids) for _ in range(3)]
    assert sorted(c.iter_group_chats(owners=["guide0001"], limit=2)) == sorted(chats)
    chat = c.get_group_chat(chats[0])
    assert chat.owner == "guide0001" and {m.userid for m in chat.members if m.type == 2} == set(eids)
    assert c.add_join_way(chats[:2], state="join-1").startswith("jw")
    t = c.add_msg_template("guide0001", [*eids, "wmGhost"], "上新")
    assert t.fail_list == ["wmGhost"]
    out = c.transfer_customers("guide0001", "guide0002", [*eids, "wmGhost"])
    assert [(o.errcode, o.meaning) for o in out] == [
        (0, "accepted"),
        (0, "accepted"),
        (40096, "invalid external userid"),
    ]
    assert {r.status for r in c.transfer_result("guide0001", "guide0002")} == {2}


def test_one_rate_limiter_per_company() -> None:
    a = Transport(CORP, SECRET, "http://127.0.0.1:9")
    b = Transport(CORP, "other-secret", "http://127.0.0.1:9")
    c = Transport("ww_other", SECRET, "http://127.0.0.1:9")
    assert a.limiter is b.limiter and a.limiter is not c.limiter  # WeCom counts calls per company
    assert Transport(CORP, SECRET, "http://127.0.0.1:9", limits=Limits(5, 8)).limiter is not a.limiter
    for t in (a, b, c):
        t.close()
