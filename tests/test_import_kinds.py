"""Every import kind lands its good rows, reports its bad rows, and is idempotent (real SQLite + DuckDB)."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from siyu.services import brands
from siyu.services.context import Context
from siyu.services.errors import SiyuError
from siyu.services.imports import get_job, list_jobs, preview, run_import


def _write(tmp_path: Path, name: str, rows: list[dict[str, object]], fmt: str = "csv", encoding: str = "utf-8") -> Path:
    frame = pd.DataFrame(rows)
    path = tmp_path / f"{name}.{fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False, encoding=encoding)
    elif fmt == "xlsx":
        frame.to_excel(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def _errors(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def brand(ctx: Context) -> str:
    brands.create_brand(ctx, "acme", "Acme 美妆")
    return "acme"


@pytest.mark.parametrize(("fmt", "encoding"), [("csv", "utf-8"), ("csv", "gbk"), ("xlsx", ""), ("parquet", "")])
def test_customers_every_format(ctx: Context, brand: str, tmp_path: Path, fmt: str, encoding: str) -> None:
    rows = [
        {"手机号": "138 0013 8000", "姓名": "张三", "会员号": "M001", "城市": "上海"},
        {"手机号": "999", "姓名": "李四", "会员号": "M002", "城市": "北京"},  # bad phone → row error
        {"手机号": "", "姓名": "王五", "会员号": "M003", "城市": "杭州"},
    ]
    path = _write(tmp_path, "customers", rows, fmt, encoding or "utf-8")
    job = run_import(ctx, brand, "customers", path)
    assert job.status == "done", job.message
    assert (job.rows_total, job.rows_ok, job.rows_failed, job.rows_skipped) == (3, 2, 1, 0)
    obs = ctx.warehouse.fetch(
        "SELECT source_ref, identifiers, traits->>'name' FROM identity_observations WHERE brand_id = ? ORDER BY obs_id",
        [brand],
    )
    assert [o[2] for o in obs] == ["张三", "王五"]
    assert {"type": "phone", "value": "+8613800138000"} in obs[0][1]
    assert {"type": "member_id", "value": "M001"} in obs[0][1]
    assert obs[0][0] == f"customers.{fmt}#row" + ("1" if fmt == "parquet" else "2")  # parquet has no header row
    assert job.error_report is not None
    report = _errors(Path(job.error_report))
    assert len(report) == 1
    assert report[0]["row"] == ("3" if fmt != "parquet" else "2")
    assert report[0]["column"] == "手机号" and report[0]["value"] == "999"
    assert "11 digits" in report[0]["reason"] and report[0]["fix"]
    assert (path.parent / (path.name + ".errors.csv")).exists()

    again = run_import(ctx, brand, "customers", path)
    assert (again.rows_ok, again.rows_skipped, again.rows_failed) == (0, 2, 1)
    assert again.file_sha256 == job.file_sha256
    assert "imported before" in again.message
    assert ctx.warehouse.fetch("SELECT count(*) FROM identity_observations")[0][0] == 2


def test_orders_lines_grouped_by_order(ctx: Context, brand: str, tmp_path: Path) -> None:
    rows = [
        {
            "订单号": "A1",
            "下单时间": "2024-03-01 10:00",
            "手机": "13800138000",
            "商品编码": "S1",
            "数量": "2",
            "单价": "50",
            "门店": "ST1",
            "导购": "G1",
            "渠道": "douyin",
        },
        {
            "订单号": "A1",
            "下单时间": "2024-03-01 10:00",
            "手机": "13800138000",
            "商品编码": "S2",
            "数量": "1",
            "单价": "¥30.5",
            "门店": "ST1",
            "导购": "G1",
            "渠道": "douyin",
        },
        {
            "订单号": "A2",
            "下单时间": "2024年3月2日",
            "手机": "13900139000",
            "商品编码": "S1",
            "数量": "1",
            "单价": "50",
            "门店": "",
            "导购": "",
            "渠道": "",
        },
        {
            "订单号": "A3",
            "下单时间": "not a date",
            "手机": "13900139000",
            "商品编码": "S1",
            "数量": "1",
            "单价": "50",
            "门店": "",
            "导购": "",
            "渠道": "",
        },
    ]
    path = _write(tmp_path, "orders", rows, "xlsx")
    job = run_import(ctx, brand, "orders", path)
    assert job.status == "done", job.message
    assert (job.rows_ok, job.rows_failed) == (3, 1)
    orders = ctx.warehouse.fetch(
        "SELECT order_id, customer_ref_type, customer_ref, amount, store_id, guide_id, channel_id FROM orders "
        "ORDER BY order_id"
    )
    assert orders == [
        ("A1", "phone", "+8613800138000", Decimal("130.50"), "ST1", "G1", "douyin"),
        ("A2", "phone", "+8613900139000", Decimal("50.00"), None, None, None),
    ]
    lines = ctx.warehouse.fetch("SELECT order_id, line_no, sku, quantity, amount FROM order_lines ORDER BY 1, 2")
    assert [(r[0], r[1], r[2], r[4]) for r in lines] == [
        ("A1", 1, "S1", Decimal("100.00")),
        ("A1", 2, "S2", Decimal("30.50")),
        ("A2", 1, "S1", Decimal("50.00")),
    ]
    assert (
        ctx.warehouse.fetch("SELECT count(*) FROM identity_observations WHERE source_kind = 'import:orders'")[0][0] == 2
    )
    report = _errors(Path(job.error_report or ""))
    assert report[0]["row"] == "5" and report[0]["column"] == "下单时间"

    again = run_import(ctx, brand, "orders", path)
    assert (again.rows_ok, again.rows_skipped) == (0, 3)
    assert ctx.warehouse.fetch("SELECT count(*) FROM order_lines")[0][0] == 3


def test_orders_english_headers_with_order_amount(ctx: Context, brand: str, tmp_path: Path) -> None:
    rows = [
        {"Order ID": "B1", "Order Time": "2024-04-01T08:00:00", "Member ID": "M9", "Amount": "99.00"},
        {"Order ID": "B2", "Order Time": "2024-04-02", "Member ID": "M9", "Amount": "1,200"},
    ]
    job = run_import(ctx, brand, "orders", _write(tmp_path, "o", rows, "parquet"))
    assert job.rows_ok == 2
    got = ctx.warehouse.fetch("SELECT order_id, customer_ref_type, amount FROM orders ORDER BY 1")
    assert got == [("B1", "member_id", Decimal("99.00")), ("B2", "member_id", Decimal("1200.00"))]
    assert ctx.warehouse.fetch("SELECT count(*) FROM order_lines")[0][0] == 0


def test_stores_guides_channels_spend(ctx: Context, brand: str, tmp_path: Path) -> None:
    stores = _write(tmp_path, "stores", [{"门店编号": "ST1", "门店名称": "静安店", "城市": "上海"}])
    assert run_import(ctx, brand, "stores", stores).rows_ok == 1
    guides = _write(
        tmp_path,
        "guides",
        [
            {"工号": "G1", "姓名": "小美", "门店": "ST1", "企微账号": "xiaomei", "在职": "是"},
            {"工号": "G2", "姓名": "", "门店": "ST1", "企微账号": "nobody", "在职": "是"},
        ],
    )
    job = run_import(ctx, brand, "guides", guides)
    assert (job.rows_ok, job.rows_failed) == (1, 1)
    assert ctx.warehouse.fetch("SELECT guide_id, name, store_id, wecom_userid, active FROM guides") == [
        ("G1", "小美", "ST1", "xiaomei", True)
    ]
    channels = _write(
        tmp_path,
        "channels",
        [
            {"channel id": "dy", "channel name": "抖音投放", "type": "short_video"},
            {"channel name": "包裹卡", "type": "包裹卡"},
        ],
    )
    assert run_import(ctx, brand, "channels", channels).rows_ok == 2
    assert ctx.warehouse.fetch("SELECT channel_id, kind FROM channels ORDER BY 1") == [
        ("dy", "short_video"),
        ("包裹卡", "parcel_card"),
    ]
    spend = _write(
        tmp_path,
        "spend",
        [
            {"渠道": "dy", "日期": "2024-05-01", "消耗": "1000.5", "曝光": "20000"},
            {"渠道": "包裹卡", "日期": "2024/05/01", "消耗": "300", "曝光": ""},
            {"渠道": "unknown", "日期": "2024-05-01", "消耗": "1", "曝光": "1"},
            {"渠道": "dy", "日期": "2024-05-02", "消耗": "abc", "曝光": "1"},
        ],
    )
    job = run_import(ctx, brand, "channel-spend", spend)
    assert (job.rows_ok, job.rows_failed) == (2, 2)
    assert ctx.warehouse.fetch("SELECT channel_id, day::VARCHAR, spend, exposures FROM channel_spend ORDER BY 1") == [
        ("dy", "2024-05-01", Decimal("1000.50"), 20000),
        ("包裹卡", "2024-05-01", Decimal("300.00"), 0),
    ]
    reasons = {r["column"]: r for r in _errors(Path(job.error_report or ""))}
    assert "siyu import channels" in reasons["渠道"]["fix"]
    assert reasons["消耗"]["value"] == "abc"
    # Re-import: identical rows are skipped; a changed row updates in place.
    assert run_import(ctx, brand, "channel_spend", spend).rows_skipped == 2
    changed = _write(tmp_path, "spend2", [{"渠道": "dy", "日期": "2024-05-01", "消耗": "900", "曝光": "20000"}])
    assert run_import(ctx, brand, "channel_spend", changed).rows_ok == 1
    assert ctx.warehouse.fetch("SELECT spend FROM channel_spend WHERE channel_id = 'dy'") == [(Decimal("900.00"),)]


def test_wecom_contacts(ctx: Context, brand: str, tmp_path: Path) -> None:
    run_import(ctx, brand, "guides", _write(tmp_path, "g", [{"工号": "G1", "姓名": "小美", "企微账号": "xiaomei"}]))
    run_import(ctx, brand, "channels", _write(tmp_path, "c", [{"渠道编号": "pc01", "渠道名称": "包裹卡"}]))
    rows = [
        {
            "客户名称": "张三",
            "external_userid": "wmAAA",
            "跟进人": "xiaomei",
            "添加时间": "2024-06-01 12:00:00",
            "添加方式": "扫描二维码",
            "渠道": "pc01",
            "备注手机号": "138 0013 8000,13900139000",
            "标签": "高意向,敏感肌",
        },
        {
            "客户名称": "李四",
            "external_userid": "wmBBB",
            "跟进人": "ghost",
            "添加时间": "2024-06-01",
            "添加方式": "",
            "渠道": "",
            "备注手机号": "",
            "标签": "",
        },
        {
            "客户名称": "王五",
            "external_userid": "wmCCC",
            "跟进人": "G1",
            "添加时间": "1717214400",
            "添加方式": "1",
            "渠道": "",
            "备注手机号": "999",
            "标签": "",
        },
    ]
    path = _write(tmp_path, "contacts", rows)
    job = run_import(ctx, brand, "wecom-contacts", path)
    assert (job.rows_ok, job.rows_failed) == (1, 2), job.message
    rel = ctx.warehouse.fetch(
        "SELECT external_userid, guide_id, added_at::VARCHAR, state, channel_id, add_way FROM relations"
    )
    # 扫描二维码 → code 1; the file's 12:00 is Beijing time, kept as the UTC instant like WeCom's own sync
    assert rel == [("wmAAA", "G1", "2024-06-01 04:00:00", "active", "pc01", "1")]
    tags = ctx.warehouse.fetch(
        "SELECT t.name FROM identifier_tags i JOIN tags t USING (brand_id, tag_id) WHERE i.id_value = 'wmAAA' "
        "ORDER BY 1"
    )
    assert [t[0] for t in tags] == sorted(["高意向", "敏感肌"])
    obs = ctx.warehouse.fetch("SELECT identifiers, traits->>'name' FROM identity_observations")
    assert obs[0][1] == "张三"
    assert {"type": "phone", "value": "+8613800138000"} in obs[0][0]
    assert {"type": "phone", "value": "+8613900139000"} in obs[0][0]
    fields = {r["column"] for r in _errors(Path(job.error_report or ""))}
    assert fields == {"跟进人", "备注手机号"}
    assert run_import(ctx, brand, "wecom_contacts", path).rows_skipped == 1
    assert ctx.warehouse.fetch("SELECT count(*) FROM relations")[0][0] == 1


def test_missing_required_field_names_field_and_headers(ctx: Context, brand: str, tmp_path: Path) -> None:
    path = _write(tmp_path, "bad", [{"foo": "1", "bar": "2"}])
    with pytest.raises(SiyuError) as err:
        run_import(ctx, brand, "orders", path)
    assert err.value.field == "order_id"
    assert "foo, bar" in err.value.message
    with pytest.raises(SiyuError) as err2:
        run_import(ctx, brand, "customers", path)
    assert "phone" in err2.value.message and "foo" in err2.value.message


def test_explicit_mapping_overrides_guess(ctx: Context, brand: str, tmp_path: Path) -> None:
    path = _write(tmp_path, "m", [{"手机号": "13800138000", "备用手机": "13900139000", "nick": "阿三"}])
    job = run_import(ctx, brand, "customers", path, mapping={"phone": "备用手机", "name": "nick"})
    assert job.mapping == {"phone": "备用手机", "name": "nick"}
    obs = ctx.warehouse.fetch("SELECT identifiers, traits->>'name' FROM identity_observations")
    assert obs == [([{"type": "phone", "value": "+8613900139000"}], "阿三")]
    with pytest.raises(SiyuError) as err:
        run_import(ctx, brand, "customers", path, mapping={"phone": "nope"})
    assert err.value.field == "mapping.phone"


def test_preview_and_job_listing(ctx: Context, brand: str, tmp_path: Path) -> None:
    path = _write(tmp_path, "p", [{"手机号": str(13800138000 + i), "姓名": f"客户{i}"} for i in range(30)])
    pv = preview(path, "customers")
    assert pv["headers"] == ["手机号", "姓名"] and len(pv["rows"]) == 10
    assert pv["mapping"]["phone"] == "手机号" and pv["mapping"]["name"] == "姓名"
    seen: list[tuple[int, int]] = []
    job = run_import(ctx, brand, "customers", path, progress=lambda d, t: seen.append((d, t)), created_by="op1")
    assert seen[-1] == (30, 30)
    assert get_job(ctx, job.id) == job and job.created_by == "op1"
    assert [j.id for j in list_jobs(ctx, brand)] == [job.id]


def test_jobs_on_both_state_backends(any_ctx: Context, tmp_path: Path) -> None:
    brands.create_brand(any_ctx, "acme", "Acme")
    path = _write(tmp_path, "stores", [{"门店编号": "ST1", "门店名称": "静安店"}, {"门店编号": "ST2", "门店名称": ""}])
    first = run_import(any_ctx, "acme", "stores", path, created_by="op")
    second = run_import(any_ctx, "acme", "stores", path)
    assert (first.rows_ok, first.rows_failed, second.rows_ok, second.rows_skipped) == (1, 1, 0, 1)
    jobs = list_jobs(any_ctx, "acme")
    assert {j.id for j in jobs} == {first.id, second.id}
    assert get_job(any_ctx, first.id).mapping == {"store_id": "门店编号", "name": "门店名称"}
    assert get_job(any_ctx, first.id).finished_at is not None


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_title_rows_above_the_header_are_skipped(ctx: Context, brand: str, tmp_path: Path, fmt: str) -> None:
    grid = [
        ["企业微信客户导出 2024-06-30", None, None],
        [None, None, None],
        ["手机号", "姓名", None],
        ["13800138000", "张三", "x"],
        ["999", "李四", None],
    ]
    path = tmp_path / f"titled.{fmt}"
    frame = pd.DataFrame(grid)
    if fmt == "csv":
        frame.to_csv(path, index=False, header=False, encoding="gbk")
    else:
        frame.to_excel(path, index=False, header=False)
    assert preview(path, "customers")["mapping"]["phone"] == "手机号"
    job = run_import(ctx, brand, "customers", path)
    assert (job.rows_ok, job.rows_failed) == (1, 1)
    assert _errors(Path(job.error_report or ""))[0]["row"] == "5"  # the spreadsheet row of 李四


@pytest.mark.parametrize("sep", ["\t", ";"])
def test_csv_delimiter_is_detected(ctx: Context, brand: str, tmp_path: Path, sep: str) -> None:
    path = tmp_path / "tabbed.csv"
    path.write_text(sep.join(["手机号", "姓名", "城市"]) + "\n" + sep.join(["13800138000", "张三", "上海"]) + "\n")
    job = run_import(ctx, brand, "customers", path)
    assert (job.rows_ok, job.mapping) == (1, {"phone": "手机号", "name": "姓名", "city": "城市"})


def test_reimported_orders_update_what_changed(ctx: Context, brand: str, tmp_path: Path) -> None:
    """A later export with a refund and a corrected line updates those orders (lines replaced); the rest is
    skipped, no order or observation is added twice."""
    base = {"下单时间": "2024-03-01 10:00", "手机": "13800138000", "门店": "ST1", "导购": "G1", "状态": "paid"}
    rows = [
        {**base, "订单号": "R1", "商品编码": "S1", "数量": "2", "单价": "50"},
        {**base, "订单号": "R1", "商品编码": "S2", "数量": "1", "单价": "30"},
        {**base, "订单号": "R2", "商品编码": "S1", "数量": "1", "单价": "50"},
        {**base, "订单号": "R3", "商品编码": "S3", "数量": "1", "单价": "10"},
    ]
    first = run_import(ctx, brand, "orders", _write(tmp_path, "o1", rows))
    assert first.rows_ok == 4, first.message
    rows[2]["状态"] = "refunded"  # R2 refunded
    rows[1]["数量"] = "3"  # R1's second line corrected: 100 + 90
    second = run_import(ctx, brand, "orders", _write(tmp_path, "o2", rows))
    assert (second.rows_ok, second.rows_skipped, second.rows_failed) == (3, 1, 0), second.message
    got = ctx.warehouse.fetch("SELECT order_id, amount, status FROM orders ORDER BY 1")
    assert got == [
        ("R1", Decimal("190.00"), "paid"),
        ("R2", Decimal("50.00"), "refunded"),
        ("R3", Decimal("10.00"), "paid"),
    ]
    lines = ctx.warehouse.fetch("SELECT order_id, line_no, quantity, amount FROM order_lines ORDER BY 1, 2")
    assert [(o, n, q, a) for o, n, q, a in lines] == [
        ("R1", 1, Decimal("2.000"), Decimal("100.00")),
        ("R1", 2, Decimal("3.000"), Decimal("90.00")),
        ("R2", 1, Decimal("1.000"), Decimal("50.00")),
        ("R3", 1, Decimal("1.000"), Decimal("10.00")),
    ]
    assert (
        ctx.warehouse.fetch("SELECT count(*) FROM identity_observations WHERE source_kind = 'import:orders'")[0][0] == 3
    )
    third = run_import(ctx, brand, "orders", _write(tmp_path, "o3", rows))  # same content, another file
    assert (third.rows_ok, third.rows_skipped) == (0, 4)
