"""The scripts library service, the next-action rules and the CLI on real stores: search by every word, folders
with sub-folders, guides read-only, concurrent uses all counted, errors naming the field; `siyu scripts` and
`siyu sidebar`; the migration matches the models and leaves one head."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from typer.testing import CliRunner

from siyu.cli.main import app
from siyu.config import Settings
from siyu.domain.models import Role
from siyu.domain.next_action import CustomerState, suggest
from siyu.errors import SiyuError
from siyu.services import brands, scripts
from siyu.services.brands import User
from siyu.services.context import Context
from siyu.services.sidebar.config import get_sidebar_config

OPS = User(0, "sb", "ops", "ops", Role.OPERATOR, None, "zh")
GUIDE = User(0, "sb", "g", "导购甲", Role.GUIDE, "g1", "zh")


def test_search_folders_and_counts(ctx: Context) -> None:
    brands.create_brand(ctx, "sb", "SB")
    top = scripts.create_folder(ctx, OPS, "售后")
    sub = scripts.create_folder(ctx, OPS, "退换货", parent_id=top["id"])
    with pytest.raises(SiyuError) as err:
        scripts.create_folder(ctx, OPS, "更深", parent_id=sub["id"])
    assert err.value.field == "parent_id"
    a = scripts.create_script(ctx, OPS, "text", "退货流程", "七天无理由退货，请保留包装", folder_id=sub["id"])
    b = scripts.create_script(ctx, OPS, "text", "物流查询", "您的包裹已发出", folder_id=top["id"], keywords="快递")
    c = scripts.create_script(ctx, OPS, "text", "Welcome", "Hello {name}")
    assert [i["id"] for i in scripts.search_scripts(ctx, GUIDE, "退货 包装")["items"]] == [a["id"]]
    assert [i["id"] for i in scripts.search_scripts(ctx, GUIDE, "快递")["items"]] == [b["id"]]
    assert [i["id"] for i in scripts.search_scripts(ctx, GUIDE, "WELCOME")["items"]] == [c["id"]]
    assert scripts.search_scripts(ctx, GUIDE, "100%")["total"] == 0  # wildcards are not patterns
    in_top = scripts.search_scripts(ctx, GUIDE, folder_id=top["id"], sort="title")["items"]
    assert {i["id"] for i in in_top} == {a["id"], b["id"]}
    assert [i["id"] for i in scripts.search_scripts(ctx, GUIDE, folder_id=0)["items"]] == [c["id"]]
    with pytest.raises(SiyuError) as err:
        scripts.search_scripts(ctx, GUIDE, page_size=500)
    assert err.value.field == "page_size"
    with pytest.raises(SiyuError) as err:
        scripts.create_script(ctx, GUIDE, "text", "x", "y")
    assert err.value.status_code == 403

    # 40 concurrent uses from 4 threads: every one counted, the most used first
    def use(_: int) -> int:
        return scripts.record_use(ctx, GUIDE, b["id"], "c1")

    with ThreadPoolExecutor(4) as pool:
        counts = list(pool.map(use, range(40)))
    assert max(counts) == 40 and len(set(counts)) == 40
    scripts.record_use(ctx, OPS, a["id"], channel="copy")
    assert [i["id"] for i in scripts.search_scripts(ctx, GUIDE)["items"]][:2] == [b["id"], a["id"]]
    assert scripts.usage(ctx, OPS, b["id"])["by_guide"] == {"g1": 40}
    assert scripts.usage(ctx, OPS, a["id"])["by_guide"] == {"": 1}

    moved = scripts.delete_folder(ctx, OPS, top["id"])
    assert moved == {"moved": 1}
    assert {f["name"]: f["parent_id"] for f in scripts.list_folders(ctx, OPS)} == {"退换货": 0}
    scripts.delete_script(ctx, OPS, c["id"])
    assert scripts.search_scripts(ctx, GUIDE, "welcome")["total"] == 0
    edited = scripts.update_script(ctx, OPS, a["id"], title="退货须知")
    assert edited["title"] == "退货须知" and edited["use_count"] == 1
    with pytest.raises(SiyuError) as err:
        scripts.update_script(ctx, OPS, a["id"], kind="link")
    assert err.value.field == "payload.url"


def test_next_action_rules() -> None:
    first = [s.code for s in suggest(CustomerState())]
    assert first == ["keep_in_touch"]
    assert suggest(CustomerState(overdue_tasks=1, p_alive=0.1, orders=3))[0].code == "overdue_task"
    assert suggest(CustomerState(has_active_relation=False))[0].code == "relation_lost"
    assert suggest(CustomerState(orders=2, p_alive=0.29))[0].code == "win_back"
    assert suggest(CustomerState(orders=2, p_alive=0.31))[0].code == "keep_in_touch"
    assert suggest(CustomerState(orders=0, p_alive=0.01))[0].code == "keep_in_touch"  # never bought: not at risk
    assert suggest(CustomerState(days_since_added=3))[0].code == "welcome"
    assert suggest(CustomerState(days_since_added=4, aipl_stage="I"))[0].code == "first_order"
    assert suggest(CustomerState(orders=1, days_since_last_order=7))[0].code == "second_order"
    assert suggest(CustomerState(orders=1, days_since_last_order=61))[0].code == "keep_in_touch"
    assert suggest(CustomerState(orders=5, rfm_class="important_value"))[0].code == "vip_care"
    assert suggest(CustomerState(orders=5, rfm_class="general_win_back"))[0].code == "win_back"
    assert suggest(CustomerState(clv_top=True))[0].script_hint == "关怀"


def test_cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIYU_DATA_DIR", str(settings.data_dir))
    ctx = Context.open(settings)
    brands.create_brand(ctx, "sb", "SB")
    with ctx.warehouse.transaction() as cur:
        cur.execute("INSERT INTO guides (brand_id, guide_id, name, wecom_userid) VALUES ('sb', 'g1', '甲', 'u1')")
    ctx.close()
    runner = CliRunner()
    r = runner.invoke(app, ["scripts", "add-folder", "sb", "开场白"])
    assert r.exit_code == 0, r.output
    fid = int(re.search(r"added folder (\d+)", r.output).group(1))  # type: ignore[union-attr]
    link = ["--kind", "link", "--title", "新品", "--payload", '{"url": "https://x.example/n"}']
    r = runner.invoke(app, ["scripts", "add", "sb", *link, "--folder", str(fid)])
    assert r.exit_code == 0 and "added script" in r.output, r.output
    r = runner.invoke(app, ["scripts", "add", "sb", "--kind", "link", "--title", "坏", "--payload", "[1]"])
    assert r.exit_code == 2 and "--payload must be a JSON object" in r.output
    r = runner.invoke(app, ["scripts", "list", "sb", "--q", "新品", "--json"])
    assert r.exit_code == 0 and '"total": 1' in r.output
    img = settings.data_dir / "a.png"
    img.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 20)
    r = runner.invoke(
        app, ["scripts", "add", "sb", "--kind", "image", "--title", "图", "--payload", '{"media_id": "M"}']
    )
    sid = re.search(r"added script (\d+)", r.output).group(1)  # type: ignore[union-attr]
    r = runner.invoke(app, ["scripts", "attach", "sb", sid, str(img)])
    assert r.exit_code == 0 and "attached" in r.output, r.output
    img.write_bytes(b"GIF89a" + b"0" * 20)
    r = runner.invoke(app, ["scripts", "attach", "sb", sid, str(img)])
    assert r.exit_code == 2 and "JPG or PNG" in r.output
    r = runner.invoke(app, ["scripts", "folders", "sb"])
    assert r.exit_code == 0 and "开场白" in r.output
    r = runner.invoke(app, ["sidebar", "configure", "sb", "--agent-id", "abc"])
    assert r.exit_code == 2 and "agent_id" in r.output
    r = runner.invoke(app, ["sidebar", "configure", "sb", "--agent-id", "1000002", "--agent-secret", "s" * 43])
    assert r.exit_code == 0 and '"agent_secret": "***"' in r.output
    r = runner.invoke(app, ["sidebar", "link", "sb", "--guide", "g1"])
    assert r.exit_code == 0 and "/sidebar/sb/link?t=" in r.output
    r = runner.invoke(app, ["sidebar", "link", "sb", "--guide", "nobody"])
    assert r.exit_code == 2 and "not a guide" in r.output
    r = runner.invoke(app, ["secrets", "rotate"])  # the app secret is re-encrypted with the new key too
    assert r.exit_code == 0, r.output
    ctx = Context.open(settings)
    try:
        with ctx.engine.connect() as con:
            raw = con.exec_driver_sql("SELECT settings FROM brands WHERE id = 'sb'").scalar()
        assert "s" * 43 not in str(raw)  # sealed at rest
        assert get_sidebar_config(ctx, "sb").agent_secret == "s" * 43
    finally:
        ctx.close()


def test_migration_matches_models_and_one_head(ctx: Context) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    import siyu.stores.state.script_models  # noqa: F401
    from siyu.stores.state.db import MIGRATIONS_DIR
    from siyu.stores.state.models import Base

    with ctx.engine.connect() as con:
        diff = compare_metadata(MigrationContext.configure(con), Base.metadata)
    assert [d for d in diff if "script" in str(d)] == []
    assert len(ScriptDirectory(str(MIGRATIONS_DIR)).get_heads()) == 1


def test_confirm_races_count_once(ctx: Context) -> None:
    """8 threads confirming the same send: one use counted, the others told it was confirmed already (409); 8
    different sends confirmed at once: 8 uses."""
    from siyu.services.sidebar import sends

    brands.create_brand(ctx, "sb", "SB")
    item = scripts.create_script(ctx, OPS, "text", "欢迎", "您好")
    token = sends.prepare(ctx, GUIDE, item["id"], customer_id="c1")["token"]

    def confirm(t: str) -> int:
        try:
            return int(sends.confirm(ctx, GUIDE, t, "sendChatMessage:ok")["counted"])
        except SiyuError as exc:
            assert (exc.status_code, exc.field) == (409, "token")
            return 0

    with ThreadPoolExecutor(4) as pool:
        assert sum(pool.map(confirm, [token] * 8)) == 1
        assert scripts.get_script(ctx, OPS, item["id"])["use_count"] == 1
        many = [sends.prepare(ctx, GUIDE, item["id"], chat_id="wr1")["token"] for _ in range(8)]
        assert sum(pool.map(confirm, many)) == 8
    assert scripts.usage(ctx, OPS, item["id"])["sends"] == {
        "prepared": 9,
        "sent": 9,
        "cancelled": 0,
        "failed": 0,
        "expired": 0,
        "pending": 0,
    }
    with pytest.raises(SiyuError) as err:
        sends.prepare(ctx, GUIDE, item["id"], customer_id="c1", chat_id="wr1")
    assert err.value.field == "customer_id"
    with pytest.raises(SiyuError) as err:
        sends.prepare(ctx, GUIDE, item["id"], customer_id="c1", channel="sms")
    assert err.value.field == "channel"


def test_verify_file_cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """`siyu wecom verify-file set|show|clear`: the file's own name and exact bytes; a wrong name refused."""
    from siyu.services.sidebar.verify_file import content_of

    monkeypatch.setenv("SIYU_DATA_DIR", str(settings.data_dir))
    ctx = Context.open(settings)
    brands.create_brand(ctx, "sb", "SB")
    ctx.close()
    good = settings.data_dir / "WW_verify_Qw3rTy9UiOp0AsDf.txt"
    good.write_bytes(b"Qw3rTy9UiOp0AsDf")
    runner = CliRunner()
    r = runner.invoke(app, ["wecom", "verify-file", "set", "sb", str(good)])
    assert r.exit_code == 0 and '"path": "/WW_verify_Qw3rTy9UiOp0AsDf.txt"' in r.output, r.output
    bad = settings.data_dir / "verify.txt"
    bad.write_bytes(b"x")
    r = runner.invoke(app, ["wecom", "verify-file", "set", "sb", str(bad)])
    assert r.exit_code == 2 and "not a WeCom verification file name" in r.output
    r = runner.invoke(app, ["wecom", "verify-file", "show", "sb"])
    assert r.exit_code == 0 and '"content_is_code": true' in r.output
    ctx = Context.open(settings)
    try:
        assert content_of(ctx, good.name) == b"Qw3rTy9UiOp0AsDf"
    finally:
        ctx.close()
    r = runner.invoke(app, ["wecom", "verify-file", "clear", "sb"])
    assert r.exit_code == 0 and "cleared" in r.output
