"""Full contact sync from the local WeCom server (~5,000 contacts): relations, losses, OneID, CLI, idempotence."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from typer.testing import CliRunner

from siyu.cli.main import app
from siyu.config import Settings
from siyu.services import brands
from siyu.services.context import Context
from siyu.services.wecom.config import WeComConfig, set_config
from siyu.services.wecom.sync import member_lists, sync_contacts
from tests.wecom_server import WeComServer, running, seed

TOKEN, KEY, CORP = "QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wwlocal0000000001"


def prepare(ctx: Context, api_base: str) -> None:
    brands.create_brand(ctx, "acme", "Acme")
    set_config(ctx, "acme", WeComConfig(CORP, TOKEN, KEY, secret="contact-secret", api_base=api_base))
    with ctx.warehouse.transaction() as cur:
        cur.execute(
            "INSERT INTO guides (brand_id, guide_id, name, wecom_userid) "
            "SELECT 'acme', printf('g%03d', i), printf('导购%d', i), printf('guide%04d', i) FROM range(1, 51) t(i)"
        )
        cur.execute(
            "INSERT INTO guides (brand_id, guide_id, name, wecom_userid) VALUES ('acme','g999','离职','left01')"
        )
        cur.execute("INSERT INTO channels (brand_id, channel_id, name, kind) VALUES ('acme','store','ch1','offline')")
        cur.execute(
            "INSERT INTO relations (brand_id, external_userid, guide_id, added_at, state) VALUES "
            "('acme','wmGone','g001','2024-01-01','active'), ('acme','wmOther','g999','2024-01-01','active')"
        )


def test_sync_5000_contacts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    srv = WeComServer()
    seed(srv.company, guides=51, contacts_per_guide=100, shared=0.05)  # guide0051 is not a siyu guide
    expected = {(e, f"g{int(u[5:]):03d}") for (u, e) in srv.company.relations if u != "guide0051"}
    contacts = {e for e, _ in expected}
    back = next(iter(sorted(expected)))  # a relation siyu thought lost: WeCom still lists it
    settings = Settings(data_dir=tmp_path / "data")
    with running(srv) as base:
        ctx = Context.open(settings)
        try:
            prepare(ctx, base)
            with ctx.warehouse.transaction() as cur:
                cur.execute(
                    "INSERT INTO relations (brand_id, external_userid, guide_id, added_at, state, lost_at, lost_by) "
                    "VALUES ('acme', ?, ?, '2024-01-01', 'lost', '2024-02-01', 'customer')",
                    list(back),
                )
            thresholds = gc.get_threshold()
            s = sync_contacts(ctx, "acme")
            assert gc.get_threshold() == thresholds  # collections as usual again after the sync
            assert (s.members, s.guides_synced, s.unknown_members) == (51, 50, ["guide0051"])
            assert s.records == len(expected) > 5_000
            assert (s.relations_new, s.relations_reactivated, s.relations_lost) == (len(expected) - 1, 1, 1)
            # the member list, the corp tag list (fetched alongside) and the pages
            assert s.api_calls == 2 + srv.counts["batch/get_by_user"] and s.observations == len(contacts)
            # the fewest calls: each pager's members' records in full pages of 100 (a partial page at a list's end)
            lists = [set(x) for x in member_lists(sorted(u for u in srv.company.members if u != "guide0051"))]
            per_list = [sum(1 for u, _ in srv.company.relations if u in x) for x in lists]
            assert (
                srv.counts["batch/get_by_user"]
                == sum(-(-n // 100) for n in per_list)
                <= -(-s.records // 100) + len(lists) - 1
            )
            rows = ctx.warehouse.fetch(
                "SELECT external_userid, guide_id, state, lost_by, channel_id, add_way FROM relations "
                "WHERE brand_id = 'acme'"
            )
            active = {(e, g) for e, g, st, *_ in rows if st == "active"}
            assert active == expected | {("wmOther", "g999")}  # a guide WeCom no longer lists is left alone
            assert [(st, lb) for e, g, st, lb, *_ in rows if e == "wmGone"] == [("lost", "sync")]
            by_state = {(r[0], r[1]): r for r in rows}
            for (u, e), wr in list(srv.company.relations.items())[:300]:
                if u != "guide0051":
                    got = by_state[(e, f"g{int(u[5:]):03d}")]
                    assert got[5] == str(wr.add_way) and got[4] == ("store" if wr.state == "ch1" else wr.state or None)
            # identities resolve after the sync returns (off its critical path), through OneID's incremental run
            assert s.wait_identities(timeout=120) and not s.identities_resolving
            ids = ctx.warehouse.fetch(
                "SELECT count(DISTINCT id_value) FILTER (WHERE id_type = 'external_userid'), "
                "count(DISTINCT id_value) FILTER (WHERE id_type = 'unionid'), count(DISTINCT customer_id) "
                "FROM identities WHERE brand_id = 'acme'"
            )
            assert ids == [(len(contacts), len(contacts), len(contacts))]
        finally:
            ctx.close()
        monkeypatch.setenv("SIYU_DATA_DIR", str(settings.data_dir))
        r = CliRunner().invoke(app, ["wecom", "sync", "acme"], terminal_width=200)
        assert r.exit_code == 0, r.output
        out = " ".join(r.output.split())  # Rich wraps lines
        assert "0 new, 0 re-added, 0 lost, 0 identities observed" in out and "skipped): guide0051" in out
        r = CliRunner().invoke(app, ["wecom", "show", "acme"])
        assert r.exit_code == 0 and CORP in r.output and "contact-secret" not in r.output


def test_configure_cli_validates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIYU_DATA_DIR", str(tmp_path / "data"))
    ctx = Context.open(Settings(data_dir=tmp_path / "data"))
    brands.create_brand(ctx, "acme", "Acme")
    ctx.close()
    args = ["wecom", "configure", "acme", "--corp-id", CORP, "--token", TOKEN]
    r = CliRunner().invoke(app, [*args, "--aes-key", KEY + "="])
    assert r.exit_code == 2 and "43 characters" in r.output
    r = CliRunner().invoke(app, [*args, "--aes-key", KEY, "--secret", "s"])
    assert r.exit_code == 0 and "/api/wecom/callback/acme" in r.output
    r = CliRunner().invoke(app, ["wecom", "callbacks", "acme", "--process"])
    assert r.exit_code == 0 and "processed 0 callbacks" in r.output


def test_group_sync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.wecom_server import actions

    srv = WeComServer()
    seed(srv.company, guides=3, contacts_per_guide=30)
    mine = [r.external_userid for r in srv.company.customers_of("guide0001")]
    chats = [actions.add_group(srv, "guide0001", mine[i : i + 10]) for i in range(0, 30, 10)]
    actions.add_group(srv, "guide0051", mine[:5])  # owned by a member who is not a siyu guide: not synced
    srv.company.members["guide0051"] = "x"
    settings = Settings(data_dir=tmp_path / "data")
    with running(srv) as base:
        ctx = Context.open(settings)
        try:
            prepare(ctx, base)
            from siyu.services.wecom.groups import sync_groups

            g = sync_groups(ctx, "acme")
            assert (g.groups, g.joined, g.left, g.observations) == (3, 30, 0, 30)
            got = ctx.warehouse.fetch(
                "SELECT t.touchpoint_id, t.guide_id, count(*) FROM group_members m JOIN touchpoints t "
                "USING (brand_id, touchpoint_id) WHERE m.left_at IS NULL GROUP BY 1, 2 ORDER BY 1"
            )
            assert got == [(c, "g001", 10) for c in sorted(chats)]
            first = srv.company.groups[chats[0]]
            first["member_list"] = first["member_list"][:-3]  # three customers left the group
        finally:
            ctx.close()
        monkeypatch.setenv("SIYU_DATA_DIR", str(settings.data_dir))
        r = CliRunner().invoke(app, ["wecom", "sync", "acme"])
        assert r.exit_code == 0, r.output
        out = " ".join(r.output.split())
        assert "groups: 3 (of guides), 0 memberships started, 3 ended, 0 identities observed" in out


def test_tag_sync(tmp_path: Path) -> None:
    from siyu.services.wecom.config import client_for, get_config

    srv = WeComServer()
    seed(srv.company, guides=2, contacts_per_guide=20)
    with running(srv) as base:
        ctx = Context.open(Settings(data_dir=tmp_path / "data"))
        try:
            prepare(ctx, base)
            client = client_for(get_config(ctx, "acme"))
            a, b = (t.id for t in client.add_corp_tags(["门店", "直播"], group_name="渠道").tags)
            custs = [r.external_userid for r in srv.company.customers_of("guide0001")]
            for ext in custs[:5]:
                client.mark_tag("guide0001", ext, add=[a])
            client.mark_tag("guide0001", custs[0], add=[b])
            s = sync_contacts(ctx, "acme")
            assert (s.tags, s.customer_tags_added, s.customer_tags_removed) == (2, 6, 0)
            client.del_corp_tags(tag_ids=[b])  # gone from WeCom: the tag and its assignments go
            client.mark_tag("guide0001", custs[1], remove=[a])
            s = sync_contacts(ctx, "acme")
            assert (s.tags, s.customer_tags_added, s.customer_tags_removed) == (1, 0, 1)
            rows = ctx.warehouse.fetch(
                "SELECT id_value, tag_id FROM identifier_tags WHERE brand_id = 'acme' AND source = 'wecom'"
            )
            assert sorted(rows) == sorted((e, a) for e in [custs[0], *custs[2:5]])
            assert ctx.warehouse.fetch("SELECT tag_id FROM tags WHERE brand_id = 'acme'") == [(a,)]
            client.close()
        finally:
            ctx.close()


def _snapshot(ctx: Context) -> tuple[list[tuple[object, ...]], ...]:
    q = [
        "SELECT * FROM relations WHERE brand_id = 'acme' ORDER BY external_userid, guide_id",
        "SELECT source_ref, observed_at, identifiers, traits FROM identity_observations WHERE brand_id = 'acme' "
        "ORDER BY source_ref",
        "SELECT id_type, id_value, customer_id FROM identities WHERE brand_id = 'acme' ORDER BY 1, 2",
        "SELECT id_value, tag_id FROM identifier_tags WHERE brand_id = 'acme' ORDER BY 1, 2",
    ]
    return tuple(ctx.warehouse.fetch(sql) for sql in q)


def test_sync_pages_writes_and_second_sync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Several pagers (150 members in lists of 10), relations written in several transactions while pages
    arrive, identifiers that need normalising, a failed fetch that marks nothing lost, and a second sync that
    changes nothing."""
    import dataclasses

    from siyu.connectors.wecom.errors import WeComError
    from siyu.services.wecom import sync

    monkeypatch.setattr(sync, "WRITE_EVERY", 150)
    srv = WeComServer()
    seed(srv.company, guides=150, contacts_per_guide=4, shared=0.1)
    first, second = sorted(srv.company.contacts)[:2]
    c1, c2 = srv.company.contacts[first], srv.company.contacts[second]
    srv.company.contacts[first] = dataclasses.replace(c1, unionid=f"  {c1.unionid} ")  # stored stripped
    srv.company.contacts[second] = dataclasses.replace(c2, unionid="null")  # not an identifier: left out
    expected = {(e, f"g{int(u[5:]):03d}") for (u, e) in srv.company.relations}
    with running(srv) as base:
        ctx = Context.open(Settings(data_dir=tmp_path / "data"))
        try:
            brands.create_brand(ctx, "acme", "Acme")
            set_config(ctx, "acme", WeComConfig(CORP, TOKEN, KEY, secret="contact-secret", api_base=base))
            with ctx.warehouse.transaction() as cur:
                cur.execute(
                    "INSERT INTO guides (brand_id, guide_id, name, wecom_userid) SELECT 'acme', printf('g%03d', i), "
                    "'x', printf('guide%04d', i) FROM range(1, 151) t(i)"
                )
                cur.execute(
                    "INSERT INTO relations (brand_id, external_userid, guide_id, added_at, state) "
                    "VALUES ('acme','wmGone','g001','2024-01-01','active')"
                )
            srv.inject("batch/get_by_user", 60111)
            with pytest.raises(WeComError):
                sync_contacts(ctx, "acme")
            assert ctx.warehouse.fetch("SELECT state FROM relations WHERE external_userid = 'wmGone'") == [("active",)]
            # pages that arrived before the error may have been written (true facts; the next sync completes them):
            # their relations and their contacts' first observations, nothing else
            early = ctx.warehouse.fetch("SELECT count(*) FROM relations WHERE external_userid <> 'wmGone'")[0][0]
            observed = ctx.warehouse.fetch(
                "SELECT count(*) FROM identity_observations o WHERE o.source_ref NOT IN (SELECT 'wecom-sync:' || "
                "external_userid FROM relations)"
            )
            assert observed == [(0,)]
            early_refs = [r[0] for r in ctx.warehouse.fetch("SELECT source_ref FROM identity_observations")]
            early_obs = len(early_refs)

            calls0 = srv.counts["batch/get_by_user"]
            s = sync_contacts(ctx, "acme")
            assert s.records == len(expected) and s.relations_new == len(expected) - early and s.relations_lost == 1
            # the fewest calls: each list's records in full pages of 100 (a partial page only at a list's end)
            lists = member_lists(sorted(srv.company.members))
            assert [len(x) for x in lists] == [10] * 15  # every pager busy (16 at most), as even as 100 a call allows
            per_list = [sum(1 for u, _ in srv.company.relations if u in set(x)) for x in lists]
            assert srv.counts["batch/get_by_user"] - calls0 == sum(-(-n // 100) for n in per_list)
            active = ctx.warehouse.fetch("SELECT external_userid, guide_id FROM relations WHERE state = 'active'")
            assert set(active) == expected
            assert s.observations == len(srv.company.contacts) - early_obs
            # a contact of several guides is observed once, at the earliest of its relations (first-seen times
            # are fixed up when its relations were written in different transactions; one observed by the failed
            # sync keeps the earliest of the relations that sync saw)
            off = ctx.warehouse.fetch(
                "SELECT count(*) FROM identity_observations o JOIN (SELECT external_userid, min(added_at) AS at "
                "FROM relations GROUP BY 1) r ON o.source_ref = 'wecom-sync:' || r.external_userid "
                "WHERE o.observed_at <> r.at AND NOT list_contains(?, o.source_ref)",
                [early_refs],
            )
            assert off == [(0,)]
            assert ctx.warehouse.fetch("SELECT count(DISTINCT source_ref) = count(*) FROM identity_observations") == [
                (True,)
            ]
            assert s.wait_identities(timeout=120)
            ids = dict(ctx.warehouse.fetch("SELECT id_value, customer_id FROM identities WHERE brand_id = 'acme'"))
            assert ids[c1.unionid] == ids[first] and "null" not in ids and ids[second]
            assert len({ids[e] for e in srv.company.contacts}) == len(srv.company.contacts)
            before = _snapshot(ctx)

            again = sync_contacts(ctx, "acme")
            changed = (again.relations_new, again.relations_reactivated, again.relations_lost, again.observations)
            assert changed == (0, 0, 0, 0) and not again.identities_resolving
            assert _snapshot(ctx) == before
        finally:
            ctx.close()
