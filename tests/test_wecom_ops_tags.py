"""Tags siyu → WeCom against the local WeCom server over HTTP: corp tag CRUD within WeCom's limits, marks, and a
segment tag rule marking entrants and removing the tag from leavers (in WeCom and in the warehouse)."""

from __future__ import annotations

import pytest

from siyu.errors import SiyuError
from siyu.services import segments
from siyu.services.context import Context
from siyu.services.wecom import tag_rules, tags
from siyu.services.wecom.config import client_for, get_config
from tests.test_wecom_ops_env import ADMIN, Env, wecom_brand


def wecom_tags(env: Env, userid: str, ext: str) -> list[str]:
    return list(env.srv.company.relations[(userid, ext)].tag_ids)


def wh_tagged(ctx: Context, tag_id: str) -> set[str]:
    rows = ctx.warehouse.fetch(
        "SELECT id_value FROM identifier_tags WHERE brand_id = 'acme' AND tag_id = ? AND source = 'wecom'", [tag_id]
    )
    return {r[0] for r in rows}


def test_corp_tag_crud_and_limits(ctx: Context) -> None:
    with wecom_brand(ctx, guides=1, per_guide=2) as env:
        client = client_for(get_config(ctx, "acme"))
        made = tags.create_tag(ctx, ADMIN, client, "高价值", group_name="价值分层", order=5)
        tag = env.srv.company.tags[str(made["id"])]
        assert (tag["name"], tag["order"], env.srv.company.tag_groups[tag["group_id"]]["name"]) == (
            "高价值",
            5,
            "价值分层",
        )
        assert ctx.warehouse.fetch("SELECT name FROM tags WHERE tag_id = ?", [made["id"]]) == [("高价值",)]
        tags.edit_tag(ctx, ADMIN, client, str(made["id"]), name="超高价值")
        assert env.srv.company.tags[str(made["id"])]["name"] == "超高价值"
        assert ctx.warehouse.fetch("SELECT name FROM tags WHERE tag_id = ?", [made["id"]]) == [("超高价值",)]
        other = tags.create_tag(ctx, ADMIN, client, "新客", group_name="生命周期")
        tags.edit_tag(ctx, ADMIN, client, str(other["group_id"]), order=9)  # groups are ordered, the larger first
        assert [g["group_name"] for g in tags.corp_tags(client)] == ["生命周期", "价值分层"]
        tags.edit_tag(ctx, ADMIN, client, tag["group_id"], order=10)
        assert [g["group_name"] for g in tags.corp_tags(client)] == ["价值分层", "生命周期"]
        with pytest.raises(SiyuError) as err:
            tags.create_tag(ctx, ADMIN, client, "长" * 31, group_name="价值分层")
        assert err.value.field == "name" and "31 characters" in err.value.message
        with pytest.raises(SiyuError, match="already has a tag"):
            tags.create_tag(ctx, ADMIN, client, "超高价值", group_name="价值分层")
        ext = next(iter(env.srv.company.relations))[1]
        tags.mark_customer(ctx, ADMIN, client, ext, [str(made["id"])], [])
        assert wecom_tags(env, "guide0001", ext) == [made["id"]] and wh_tagged(ctx, str(made["id"])) == {ext}
        # the 3,000-tag limit is checked before asking WeCom
        gid = tag["group_id"]
        for i in range(2998):
            env.srv.company.tags[f"bulk{i}"] = {"group_id": gid, "name": f"b{i}", "order": 0, "create_time": 0}
        with pytest.raises(SiyuError, match="3000 corp tags"):
            tags.create_tag(ctx, ADMIN, client, "再来一个", group_name="价值分层")
        tags.delete_tags(ctx, ADMIN, client, tag_ids=[str(made["id"])])
        assert str(made["id"]) not in env.srv.company.tags and wh_tagged(ctx, str(made["id"])) == set()


def test_segment_rule_marks_entrants_and_removes_leavers(ctx: Context) -> None:
    with wecom_brand(ctx, guides=2, per_guide=6) as env:
        rels = sorted(env.srv.company.relations)
        exts = [e for _, e in rels]
        first, later = exts[:4] + exts[6:8], exts[2:4] + exts[6:10]
        seg = env.segment(first, "活跃客户")
        rule = tag_rules.create_rule(ctx, ADMIN, seg, tag_name="活跃", group_name="siyu 分群")
        tag_id = rule["tag_id"]
        assert env.srv.company.tags[tag_id]["name"] == "活跃" and rule["tag_name"] == "活跃"
        out = tag_rules.refresh_rule(ctx, ADMIN, rule["id"])
        assert (out["result"]["marked"], out["result"]["removed"], out["marked"]) == (6, 0, 6)
        tagged = {e for (u, e), r in env.srv.company.relations.items() if tag_id in r.tag_ids}
        assert tagged == set(first) and wh_tagged(ctx, tag_id) == set(first)
        calls = env.srv.counts["mark_tag"]
        assert tag_rules.refresh_rule(ctx, ADMIN, rule["id"])["result"]["marked"] == 0  # nothing new: no calls
        assert env.srv.counts["mark_tag"] == calls

        # the segment changes: 2 leave, 2 enter
        segments.update_segment(ctx, ADMIN, seg, definition=env.definition([env.customer_of(e) for e in later]))
        out = tag_rules.refresh_rule(ctx, ADMIN, rule["id"])
        assert (out["result"]["marked"], out["result"]["removed"]) == (2, 2)
        tagged = {e for (u, e), r in env.srv.company.relations.items() if tag_id in r.tag_ids}
        assert tagged == set(later) and wh_tagged(ctx, tag_id) == set(later)
        assert [r["id"] for r in tag_rules.list_rules(ctx, ADMIN)] == [rule["id"]]
        assert tag_rules.delete_rule(ctx, ADMIN, rule["id"]) == {"removed": 6}
        assert not any(tag_id in r.tag_ids for r in env.srv.company.relations.values())
