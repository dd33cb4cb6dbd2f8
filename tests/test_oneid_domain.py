"""The pure OneID algorithm: merge rules, limits, shared identifiers, splits, order independence."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from siyu.domain.identity import DEFAULT_POLICIES, IdentifierError, OneIdPolicy, TypePolicy
from siyu.domain.oneid import LIMIT, MUST_NOT_LINK, Key, resolve

P = OneIdPolicy()


def groups(observations: list[list[Key]], **kw: object) -> set[frozenset[Key]]:
    return resolve(observations, P, **kw).partition()  # type: ignore[arg-type]


def test_transitive_merge_through_shared_identifiers() -> None:
    obs: list[list[Key]] = [
        [("unionid", "u1"), ("phone", "+86138")],
        [("phone", "+86138"), ("email", "a@x.cn")],
        [("email", "a@x.cn"), ("member_id", "M1")],
        [("unionid", "u2")],
    ]
    parts = groups(obs)
    assert frozenset({("unionid", "u1"), ("phone", "+86138"), ("email", "a@x.cn"), ("member_id", "M1")}) in parts
    assert frozenset({("unionid", "u2")}) in parts


def test_two_unionids_meeting_is_a_conflict_not_a_merge() -> None:
    obs: list[list[Key]] = [[("unionid", "u1"), ("phone", "+861")], [("unionid", "u2"), ("phone", "+861")]]
    res = resolve(obs, P)
    assert len(res.partition()) == 2
    assert [b.reason for b in res.blocked] == [LIMIT]
    assert res.blocked[0].id_type == "unionid"


def test_phone_limit_per_person() -> None:
    obs: list[list[Key]] = [[("unionid", "u1"), ("phone", f"+86{k}")] for k in range(3)]
    res = resolve(obs, P)
    person = next(g for g in res.partition() if ("unionid", "u1") in g)
    assert sum(1 for k in person if k[0] == "phone") == 2  # max_per_person=2
    # which phones win is canonical (value order), not arrival order
    assert person == frozenset({("unionid", "u1"), ("phone", "+860"), ("phone", "+861")})
    assert len(res.blocked) == 1 and res.blocked[0].id_type == "phone"


def test_shared_anonymous_id_never_merges() -> None:
    # one family tablet: 4 different user_ids (limit 3 people per anonymous_id)
    obs: list[list[Key]] = [[("anonymous_id", "tablet"), ("user_id", f"u{k}")] for k in range(4)]
    res = resolve(obs, P)
    assert ("anonymous_id", "tablet") in res.shared
    assert res.partition() == {frozenset({("user_id", f"u{k}")}) for k in range(4)}
    # but an anonymous_id seen with 2 user_ids is still used
    res2 = resolve(obs[:2], P)
    assert len(res2.partition()) == 1


def test_trust_zero_device_id_is_recorded_but_never_links() -> None:
    obs: list[list[Key]] = [[("device_id", "d1"), ("phone", "+861")], [("device_id", "d1"), ("phone", "+862")]]
    assert groups(obs) == {frozenset({("phone", "+861")}), frozenset({("phone", "+862")})}


def test_must_not_link_is_respected() -> None:
    obs: list[list[Key]] = [[("unionid", "u1"), ("phone", "+861"), ("email", "a@x.cn")]]
    res = resolve(obs, P, must_not_link=[(("email", "a@x.cn"), ("unionid", "u1"))])
    parts = res.partition()
    assert frozenset({("email", "a@x.cn")}) in parts or frozenset({("email", "a@x.cn"), ("phone", "+861")}) in parts
    assert not any(("email", "a@x.cn") in g and ("unionid", "u1") in g for g in parts)
    assert any(b.reason == MUST_NOT_LINK for b in res.blocked)


def test_restrict_to_limits_nodes() -> None:
    obs: list[list[Key]] = [[("unionid", "u1"), ("phone", "+861")], [("phone", "+861"), ("email", "a@x.cn")]]
    res = resolve(obs, P, restrict_to={("unionid", "u1"), ("phone", "+861")})
    assert res.partition() == {frozenset({("unionid", "u1"), ("phone", "+861")})}


def test_policy_from_settings() -> None:
    pol = OneIdPolicy.from_settings({"types": {"phone": {"max_per_person": 1}, "vip_card": {"trust": 88}}})
    assert pol.of("phone") == TypePolicy(trust=DEFAULT_POLICIES["phone"].trust, max_per_person=1)
    assert pol.of("vip_card").trust == 88
    assert OneIdPolicy.from_settings(None) == OneIdPolicy()
    with pytest.raises(IdentifierError, match=r"settings\.oneid\.types\.phone\.trust"):
        OneIdPolicy.from_settings({"types": {"phone": {"trust": -1}}})
    with pytest.raises(IdentifierError, match="unknown keys"):
        OneIdPolicy.from_settings({"types": {"phone": {"trusted": 1}}})
    # a brand that refuses to merge on phones
    no_phone = OneIdPolicy.from_settings({"types": {"phone": {"trust": 0}}})
    obs: list[list[Key]] = [[("unionid", "u1"), ("phone", "+861")], [("unionid", "u2"), ("phone", "+861")]]
    assert resolve(obs, no_phone).partition() == {frozenset({("unionid", "u1")}), frozenset({("unionid", "u2")})}


# Random observations over a small pool of identifiers (so limits, conflicts and shared values occur).
POOL: list[Key] = (
    [("unionid", f"u{k}") for k in range(4)]
    + [("phone", f"+86{k}") for k in range(5)]
    + [("email", f"e{k}@x.cn") for k in range(3)]
    + [("anonymous_id", f"a{k}") for k in range(3)]
    + [("user_id", f"id{k}") for k in range(5)]
    + [("device_id", "d0")]
)
observation = st.lists(st.sampled_from(POOL), min_size=1, max_size=4, unique=True)


@settings(max_examples=150, deadline=None)
@given(st.lists(observation, min_size=1, max_size=25), st.randoms(use_true_random=False))
def test_partition_does_not_depend_on_arrival_order(obs: list[list[Key]], rnd: random.Random) -> None:
    splits = [(("phone", "+860"), ("unionid", "u0"))]
    expected = resolve(obs, P, must_not_link=splits).partition()
    shuffled = [list(o) for o in obs]
    rnd.shuffle(shuffled)
    for o in shuffled:
        rnd.shuffle(o)
    assert resolve(shuffled, P, must_not_link=splits).partition() == expected
    # every identifier lands in exactly one group
    flat = [k for g in expected for k in g]
    assert len(flat) == len(set(flat))


def test_record_merges_replays_arrival_order() -> None:
    from siyu.domain.oneid import record_merges, resolve

    phone1, user1, phone2, union = (
        ("phone", "+8613800000001"),
        ("user_id", "u1"),
        ("phone", "+8613800000002"),
        (
            "unionid",
            "oU",
        ),
    )
    obs = [[phone1, user1], [phone2], [phone2, union], [union, user1]]
    res = resolve(obs, OneIdPolicy())
    assert len(res.partition()) == 1
    [link] = record_merges(res)
    # obs 2 only adds a new unionid to phone2's record; obs 3 joins phone2's person with the older user1 record
    assert link.obs == 3
    assert (res.nodes[link.a], res.nodes[link.b]) == (union, user1)
    assert record_merges(resolve([[phone1, user1, phone2]], OneIdPolicy())) == []
