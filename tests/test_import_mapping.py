"""Column guesses for Chinese and English headers; explicit mapping and error messages."""

from __future__ import annotations

import pytest

from siyu.services.errors import SiyuError
from siyu.services.imports import guess_mapping, resolve_mapping


@pytest.mark.parametrize(
    ("kind", "headers", "expected"),
    [
        (
            "customers",
            ["手机号", "姓名", "会员号", "unionid"],
            {"phone": "手机号", "name": "姓名", "member_id": "会员号", "unionid": "unionid"},
        ),
        (
            "customers",
            ["Mobile", "Name", "Member ID", "OpenID", "AppID"],
            {"phone": "Mobile", "name": "Name", "member_id": "Member ID", "openid": "OpenID", "appid": "AppID"},
        ),
        ("customers", ["电话", "客户姓名"], {"phone": "电话", "name": "客户姓名"}),
        (
            "orders",
            ["订单号", "下单时间", "实付金额", "数量", "单价", "门店", "导购", "渠道"],
            {
                "order_id": "订单号",
                "ordered_at": "下单时间",
                "amount": "实付金额",
                "quantity": "数量",
                "unit_price": "单价",
                "store": "门店",
                "guide": "导购",
                "channel": "渠道",
            },
        ),
        (
            "orders",
            ["Order ID", "Order Time", "Amount", "Qty", "Unit Price", "Customer ID"],
            {
                "order_id": "Order ID",
                "ordered_at": "Order Time",
                "amount": "Amount",
                "quantity": "Qty",
                "unit_price": "Unit Price",
                "customer_id": "Customer ID",
            },
        ),
        (
            "channel_spend",
            ["渠道", "日期", "花费", "曝光量"],
            {"channel": "渠道", "day": "日期", "spend": "花费", "exposures": "曝光量"},
        ),
        (
            "channel-spend",
            ["channel", "date", "spend", "impressions"],
            {"channel": "channel", "day": "date", "spend": "spend", "exposures": "impressions"},
        ),
        (
            "wecom-contacts",
            ["客户名称", "外部联系人ID", "跟进人", "添加时间", "添加方式", "渠道", "备注手机号", "标签"],
            {
                "name": "客户名称",
                "external_userid": "外部联系人ID",
                "follow_userid": "跟进人",
                "added_at": "添加时间",
                "add_way": "添加方式",
                "state": "渠道",
                "remark_mobile": "备注手机号",
                "tags": "标签",
            },
        ),
        (
            "guides",
            ["导购工号", "导购姓名", "所属门店", "企业微信账号"],
            {"guide_id": "导购工号", "name": "导购姓名", "store_id": "所属门店", "wecom_userid": "企业微信账号"},
        ),
        (
            "orders",
            ["订单号 (必填)", "下单时间*", "客户手机号"],
            {"order_id": "订单号 (必填)", "ordered_at": "下单时间*", "phone": "客户手机号"},
        ),
    ],
)
def test_guesses(kind: str, headers: list[str], expected: dict[str, str]) -> None:
    got = {k: v for k, v in guess_mapping(kind, headers).items() if v}
    assert got == expected


def test_each_column_feeds_one_field() -> None:
    assert guess_mapping("stores", ["门店"]) == {"store_id": None, "name": "门店", "city": None}
    got = guess_mapping("wecom_contacts", ["手机号", "备注手机号"])
    assert got["remark_mobile"] == "备注手机号" and list(got.values()).count("手机号") <= 1


def test_explicit_mapping_wins_and_takes_the_column() -> None:
    resolved = resolve_mapping("customers", ["手机号", "mobile2"], {"phone": "mobile2", "name": "手机号"})
    assert resolved == {"phone": "mobile2", "name": "手机号"}


def test_unmapping_with_none() -> None:
    assert "city" not in resolve_mapping("customers", ["手机号", "城市"], {"city": None})


def test_errors_name_field_and_headers() -> None:
    with pytest.raises(SiyuError) as err:
        resolve_mapping("channel_spend", ["渠道", "日期"])
    assert err.value.field == "spend" and "渠道, 日期" in err.value.message and "--map spend=" in err.value.message
    with pytest.raises(SiyuError) as err:
        resolve_mapping("customers", ["x"], {"nonsense": "x"})
    assert err.value.field == "mapping.nonsense"
    with pytest.raises(SiyuError) as err:
        guess_mapping("pets", ["x"])
    assert err.value.field == "kind"


def test_mobile_fast_path_matches_domain_normalize() -> None:
    import random

    from siyu.domain.identity import normalize
    from siyu.services.imports.kinds import parse_identifier

    rng = random.Random(7)
    samples = [f"1{rng.randint(3, 9)}{rng.randint(0, 10**9 - 1):09d}" for _ in range(300)]
    samples += ["138 0013 8000", "138-0013-8000", "+8613800138000", "8613800138000", "13800138000.0", "010-12345678"]
    for raw in samples:
        assert parse_identifier("phone", "phone", raw) == normalize("phone", raw), raw
