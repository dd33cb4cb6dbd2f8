"""What each import kind expects: its fields (with header synonyms for guessing) and how a row is parsed.

A row parser receives ``{field: cell text or None}`` and returns a record dict, or raises ``RowError`` naming
the field, the value, the reason and the fix; the runner reports that row and skips it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import pandas as pd

from siyu.domain.brand_time import UTC_OFFSET, local_to_utc
from siyu.domain.identity import IdentifierError, IdType, normalize
from siyu.domain.models import ChannelKind, Identity
from siyu.services.errors import SiyuError


class RowError(Exception):
    """One bad cell: which field, what value, why, and how to fix it."""

    def __init__(self, field: str, value: object, reason: str, fix: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.value = "" if value is None else str(value)
        self.reason = reason
        self.fix = fix


@dataclass(frozen=True)
class FieldSpec:
    """A target field of an import kind; ``synonyms`` are header names it is guessed from (best first)."""

    name: str
    synonyms: tuple[str, ...]
    required: bool = False
    help: str = ""


@dataclass(frozen=True)
class KindSpec:
    """An import kind: its fields and, when no single field is required, a set of which one must be mapped."""

    name: str
    title: str
    fields: tuple[FieldSpec, ...]
    any_of: tuple[str, ...] = ()

    def field(self, name: str) -> FieldSpec:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


# Identifier fields shared by customers and orders, in the order an order picks its customer_ref from.
_ID_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("member_id", ("会员号", "会员编号", "会员卡号", "会员id", "member id", "member no", "membership id")),
    FieldSpec("customer_id", ("客户编号", "客户号", "客户id", "customer id", "customer no", "cust id", "customerid")),
    FieldSpec("unionid", ("unionid", "union id")),
    FieldSpec("external_userid", ("external_userid", "外部联系人id", "external userid", "external contact id")),
    FieldSpec("openid", ("openid", "open id", "微信openid")),
    FieldSpec("appid", ("appid", "app id", "公众号appid", "小程序appid")),
    FieldSpec("user_id", ("user_id", "用户id", "user id")),
    FieldSpec(
        "phone",
        ("手机号", "手机", "手机号码", "电话", "联系电话", "电话号码", "mobile", "phone", "phone number", "tel"),
    ),
    FieldSpec("email", ("邮箱", "电子邮箱", "电子邮件", "email", "e-mail", "mail")),
)
ID_FIELD_NAMES = tuple(f.name for f in _ID_FIELDS if f.name != "appid")
_PROFILE_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec(
        "name", ("姓名", "名字", "客户名称", "客户姓名", "昵称", "name", "customer name", "full name", "nickname")
    ),
    FieldSpec("gender", ("性别", "gender", "sex")),
    FieldSpec("birthday", ("生日", "出生日期", "birthday", "birth date", "date of birth", "dob")),
    FieldSpec("city", ("城市", "所在城市", "city")),
)

KINDS: dict[str, KindSpec] = {
    "customers": KindSpec("customers", "客户", _ID_FIELDS + _PROFILE_FIELDS, any_of=ID_FIELD_NAMES),
    "orders": KindSpec(
        "orders",
        "订单",
        (
            FieldSpec(
                "order_id", ("订单号", "订单编号", "订单id", "order id", "order no", "order number", "invoiceno"), True
            ),
            FieldSpec(
                "ordered_at",
                (
                    "下单时间",
                    "订单时间",
                    "下单日期",
                    "支付时间",
                    "付款时间",
                    "order time",
                    "order date",
                    "ordered at",
                    "invoicedate",
                    "created at",
                    "date",
                    "日期",
                ),
                True,
            ),
            FieldSpec(
                "amount",
                ("实付金额", "订单金额", "支付金额", "实付", "金额", "amount", "order amount", "total", "paid amount"),
            ),
            FieldSpec(
                "sku", ("商品编码", "商品编号", "货号", "sku", "stockcode", "stock code", "product code", "item code")
            ),
            FieldSpec("product_name", ("商品名称", "商品", "品名", "product name", "product", "item", "description")),
            FieldSpec("quantity", ("数量", "购买数量", "件数", "qty", "quantity")),
            FieldSpec("unit_price", ("单价", "价格", "unit price", "unitprice", "price")),
            FieldSpec("line_amount", ("小计", "行金额", "商品金额", "line amount", "subtotal")),
            FieldSpec("store", ("门店", "门店编号", "门店名称", "store", "store id", "shop")),
            FieldSpec("guide", ("导购", "导购编号", "导购工号", "guide", "guide id", "staff")),
            FieldSpec("channel", ("渠道", "来源渠道", "channel", "source")),
            FieldSpec("status", ("订单状态", "状态", "status")),
            FieldSpec("currency", ("币种", "货币", "currency")),
            *_ID_FIELDS,
        ),
        any_of=ID_FIELD_NAMES,
    ),
    "guides": KindSpec(
        "guides",
        "导购",
        (
            FieldSpec(
                "guide_id",
                ("导购编号", "导购工号", "工号", "员工编号", "导购id", "guide id", "staff id", "employee id", "id"),
                True,
            ),
            FieldSpec("name", ("姓名", "导购姓名", "导购", "名字", "name", "guide name", "staff name"), True),
            FieldSpec("store_id", ("门店编号", "门店", "所属门店", "store id", "store")),
            FieldSpec(
                "wecom_userid",
                ("企微账号", "企业微信账号", "企微userid", "成员账号", "wecom userid", "wecom id", "userid", "账号"),
            ),
            FieldSpec("active", ("是否在职", "在职", "状态", "active", "status")),
        ),
    ),
    "stores": KindSpec(
        "stores",
        "门店",
        (
            FieldSpec("store_id", ("门店编号", "门店代码", "门店id", "编号", "store id", "store code", "code", "id")),
            FieldSpec("name", ("门店名称", "门店", "名称", "store name", "store", "name"), True),
            FieldSpec("city", ("城市", "所在城市", "city")),
        ),
    ),
    "channels": KindSpec(
        "channels",
        "渠道",
        (
            FieldSpec(
                "channel_id", ("渠道编号", "渠道代码", "渠道id", "编号", "channel id", "channel code", "code", "id")
            ),
            FieldSpec("name", ("渠道名称", "渠道", "名称", "channel name", "channel", "name"), True),
            FieldSpec("kind", ("渠道类型", "类型", "kind", "type")),
        ),
    ),
    "channel_spend": KindSpec(
        "channel_spend",
        "渠道消耗",
        (
            FieldSpec("channel", ("渠道", "渠道名称", "渠道编号", "channel", "channel id", "channel name"), True),
            FieldSpec("day", ("日期", "投放日期", "天", "date", "day"), True),
            FieldSpec("spend", ("消耗", "花费", "费用", "投放金额", "金额", "spend", "cost", "amount"), True),
            FieldSpec("exposures", ("曝光", "曝光量", "展示量", "展现量", "exposures", "impressions", "views")),
        ),
    ),
    "wecom_contacts": KindSpec(
        "wecom_contacts",
        "企微客户",
        (
            FieldSpec(
                "external_userid",
                (
                    "external_userid",
                    "外部联系人id",
                    "外部联系人userid",
                    "客户id",
                    "external userid",
                    "external contact id",
                ),
                True,
            ),
            FieldSpec("name", ("客户名称", "客户昵称", "昵称", "姓名", "名称", "name", "nickname")),
            FieldSpec(
                "follow_userid",
                (
                    "跟进人userid",
                    "跟进人账号",
                    "跟进人",
                    "添加人账号",
                    "添加人",
                    "所属员工",
                    "员工账号",
                    "导购",
                    "follow user",
                    "follow userid",
                    "follow_user",
                    "userid",
                    "owner",
                ),
                True,
            ),
            FieldSpec(
                "added_at", ("添加时间", "添加日期", "创建时间", "add time", "added at", "createtime", "create time")
            ),
            FieldSpec("add_way", ("添加方式", "来源", "add way", "add_way")),
            FieldSpec("state", ("渠道活码", "活码", "渠道", "state", "channel")),
            FieldSpec(
                "remark_mobile",
                (
                    "备注手机号",
                    "备注电话",
                    "手机号",
                    "手机",
                    "电话",
                    "remark mobile",
                    "remark mobiles",
                    "remark_mobiles",
                    "mobile",
                    "phone",
                ),
            ),
            FieldSpec("tags", ("企业标签", "客户标签", "标签", "tags", "tag")),
            FieldSpec("unionid", ("unionid", "union id")),
            FieldSpec("gender", ("性别", "gender", "sex")),
            FieldSpec("remark", ("备注", "备注名", "remark")),
        ),
    ),
}
KIND_ALIASES = {"channel-spend": "channel_spend", "wecom-contacts": "wecom_contacts", "contacts": "wecom_contacts"}


def kind_spec(kind: str) -> KindSpec:
    """The spec of an import kind (``channel-spend`` and ``channel_spend`` both work)."""
    name = KIND_ALIASES.get(kind, kind)
    if name not in KINDS:
        raise SiyuError(f"unknown import kind {kind!r}; use one of: {', '.join(KINDS)}", field="kind")
    return KINDS[name]


# ---- cell parsers -------------------------------------------------------------------------------------------

_CN_DATE = re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日?")


def parse_datetime(field: str, raw: str | None, required: bool = True) -> datetime | None:
    """Parse a time (ISO, 2024/01/05 10:00, 2024年1月5日, unix seconds) to the naive UTC instant the warehouse
    keeps: a wall clock without an offset is the brand's local time (a date alone is its local midnight)."""
    local = _parse_local(field, raw, required)
    return local_to_utc(local) if local is not None else None


def _parse_local(field: str, raw: str | None, required: bool) -> datetime | None:
    """A cell as a naive brand-local wall clock (a value with an offset, or unix time, converted to it)."""
    if raw is None:
        if required:
            raise RowError(field, raw, f"{field} is empty", "give a date/time such as 2024-01-05 10:30")
        return None
    text = _CN_DATE.sub(lambda m: f"{m[1]}-{int(m[2]):02d}-{int(m[3]):02d} ", raw).strip()
    try:
        if text.isdigit() and len(text) in (10, 13):
            ts = pd.Timestamp(int(text), unit="s" if len(text) == 10 else "ms", tz="UTC")
        else:
            ts = pd.Timestamp(text)
    except (ValueError, OverflowError):
        ts = None
    if ts is None or pd.isna(ts):
        raise RowError(field, raw, f"{field} {raw!r} is not a date/time", "use a date such as 2024-01-05 10:30")
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None) + UTC_OFFSET
    result: datetime = ts.to_pydatetime()
    return result


def parse_date(field: str, raw: str | None, required: bool = True) -> date | None:
    """A calendar day as the file shows it (no time-zone conversion)."""
    value = _parse_local(field, raw, required)
    return value.date() if value is not None else None


def parse_decimal(field: str, raw: str | None, required: bool = True, positive: bool = False) -> Decimal | None:
    """Parse a money/number cell (¥, commas and spaces allowed)."""
    if raw is None:
        if required:
            raise RowError(field, raw, f"{field} is empty", f"give a number for {field}")
        return None
    text = raw.replace(",", "").replace("¥", "").replace("￥", "").replace("元", "").replace(" ", "").strip()
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise RowError(field, raw, f"{field} {raw!r} is not a number", "give a plain number, e.g. 128.50") from None
    if not value.is_finite():
        raise RowError(field, raw, f"{field} {raw!r} is not a number", "give a plain number, e.g. 128.50")
    if positive and value < 0:
        raise RowError(field, raw, f"{field} is negative", f"give {field} as a number ≥ 0")
    return value


def parse_int(field: str, raw: str | None) -> int | None:
    value = parse_decimal(field, raw, required=False, positive=True)
    if value is None:
        return None
    if value != value.to_integral_value():
        raise RowError(field, raw, f"{field} {raw!r} is not a whole number", f"give {field} as a whole number")
    return int(value)


_TRUE = {"1", "true", "yes", "y", "是", "在职", "启用", "active", "正常"}
_FALSE = {"0", "false", "no", "n", "否", "离职", "停用", "inactive", "禁用"}


def parse_bool(field: str, raw: str | None, default: bool = True) -> bool:
    if raw is None:
        return default
    text = raw.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise RowError(field, raw, f"{field} {raw!r} is not yes/no", "use 是/否, 在职/离职, true/false or 1/0")


_CN_MOBILE = re.compile(r"(?:\+?86)?(1[3-9]\d{9})")
_PHONE_NOISE = re.compile(r"[\s\-]")


def parse_identifier(field: str, id_type: str, raw: str | None) -> Identity | None:
    """Normalise an identifier cell with ``siyu.domain.identity.normalize``; empty → None; bad → RowError.

    A plain mainland mobile (the bulk of any file) takes a fast path that yields the same E.164 value.
    """
    if raw is None:
        return None
    if id_type == IdType.PHONE:
        mobile = _CN_MOBILE.fullmatch(_PHONE_NOISE.sub("", raw))
        if mobile:
            return Identity(IdType.PHONE.value, "+86" + mobile[1])
    try:
        return normalize(id_type, raw)
    except IdentifierError as exc:
        fix = "give an 11-digit mainland mobile or +country code" if id_type == IdType.PHONE else f"correct {field}"
        raise RowError(field, raw, str(exc), fix) from None


_GENDER = {
    "男": "male",
    "m": "male",
    "male": "male",
    "1": "male",
    "女": "female",
    "f": "female",
    "female": "female",
    "2": "female",
}


def parse_gender(raw: str | None) -> str | None:
    if raw is None:
        return None
    return _GENDER.get(raw.strip().lower(), "unknown")


def identifiers_of(row: dict[str, str | None], spec: KindSpec) -> list[Identity]:
    """All identifiers a row carries, normalised (openid becomes ``<appid>:<openid>`` when appid is given)."""
    found: list[Identity] = []
    for name in ID_FIELD_NAMES:
        raw = row.get(name)
        if raw is None:
            continue
        if name == "openid" and row.get("appid"):
            raw = f"{row['appid']}:{raw}"
        ident = parse_identifier(name, name, raw)
        if ident is not None and ident not in found:
            found.append(ident)
    return found


# ---- per-kind row parsers -----------------------------------------------------------------------------------


def _customer(row: dict[str, str | None]) -> dict[str, Any]:
    idents = identifiers_of(row, KINDS["customers"])
    if not idents:
        raise RowError(
            "phone", None, "the row has no identifier", "fill at least one of phone, member_id, customer_id, unionid"
        )
    traits: dict[str, Any] = {}
    if row.get("name"):
        traits["name"] = row["name"]
    for ident in idents:
        if ident.type in ("phone", "email") and ident.type not in traits:
            traits[ident.type] = ident.value
    gender = parse_gender(row.get("gender"))
    if gender:
        traits["gender"] = gender
    birthday = parse_date("birthday", row.get("birthday"), required=False)
    if birthday:
        traits["birthday"] = birthday.isoformat()
    if row.get("city"):
        traits["city"] = row["city"]
    return {"identifiers": idents, "traits": traits}


def _order_line(row: dict[str, str | None]) -> dict[str, Any]:
    order_id = row.get("order_id")
    if not order_id:
        raise RowError("order_id", None, "order_id is empty", "give every line its order number")
    ordered_at = parse_datetime("ordered_at", row.get("ordered_at"))
    idents = identifiers_of(row, KINDS["orders"])
    if not idents:
        raise RowError(
            "member_id", None, "the row names no customer", "fill one of member_id, customer_id, phone, unionid"
        )
    amount = parse_decimal("amount", row.get("amount"), required=False)
    qty = parse_decimal("quantity", row.get("quantity"), required=False)
    price = parse_decimal("unit_price", row.get("unit_price"), required=False, positive=True)
    line_amount = parse_decimal("line_amount", row.get("line_amount"), required=False)
    has_line = any(row.get(k) for k in ("sku", "product_name", "quantity", "unit_price", "line_amount"))
    line: dict[str, Any] | None = None
    if has_line:
        if qty is None:
            qty = Decimal(1)
        if price is None:
            if line_amount is None:
                raise RowError("unit_price", None, "the line has no unit price", "give unit_price or line_amount")
            price = (line_amount / qty) if qty else Decimal(0)
        if line_amount is None:
            line_amount = qty * price
        line = {
            "sku": row.get("sku"),
            "name": row.get("product_name"),
            "quantity": qty,
            "unit_price": price,
            "amount": line_amount.quantize(Decimal("0.01")),
        }
    elif amount is None:
        raise RowError("amount", None, "the order has no amount and no lines", "give amount, or quantity + unit_price")
    return {
        "order_id": order_id,
        "ordered_at": ordered_at,
        "identifiers": idents,
        "customer_ref": idents[0],
        "amount": amount,
        "line": line,
        "store": row.get("store"),
        "guide": row.get("guide"),
        "channel": row.get("channel"),
        "status": (row.get("status") or "paid"),
        "currency": (row.get("currency") or "CNY").upper(),
        "name": row.get("name"),
    }


def _guide(row: dict[str, str | None]) -> dict[str, Any]:
    if not row.get("guide_id"):
        raise RowError("guide_id", None, "guide_id is empty", "give each guide a staff number")
    if not row.get("name"):
        raise RowError("name", None, "name is empty", "give the guide's name")
    return {
        "guide_id": row["guide_id"],
        "name": row["name"],
        "store_id": row.get("store_id"),
        "wecom_userid": row.get("wecom_userid"),
        "active": parse_bool("active", row.get("active")),
    }


def _store(row: dict[str, str | None]) -> dict[str, Any]:
    if not row.get("name"):
        raise RowError("name", None, "name is empty", "give the store's name")
    return {"store_id": row.get("store_id") or row["name"], "name": row["name"], "city": row.get("city")}


_CHANNEL_KINDS_CN = {
    "广告": "ad_platform",
    "广告投放": "ad_platform",
    "信息流": "ad_platform",
    "电商": "marketplace",
    "电商平台": "marketplace",
    "包裹卡": "parcel_card",
    "门店": "store",
    "外呼": "ai_call_sms",
    "ai外呼": "ai_call_sms",
    "短信": "ai_call_sms",
    "转介绍": "referral",
    "老带新": "referral",
    "裂变": "referral",
    "搜索": "search",
    "短视频": "short_video",
    "抖音": "short_video",
    "其他": "other",
}


def _channel(row: dict[str, str | None]) -> dict[str, Any]:
    if not row.get("name"):
        raise RowError("name", None, "name is empty", "give the channel's name")
    raw_kind = row.get("kind")
    kind = "other"
    if raw_kind:
        text = raw_kind.strip().lower()
        kind = _CHANNEL_KINDS_CN.get(text, text)
        if kind not in {k.value for k in ChannelKind}:
            raise RowError(
                "kind",
                raw_kind,
                f"channel kind {raw_kind!r} is unknown",
                f"use one of {', '.join(k.value for k in ChannelKind)} (or 广告/电商/包裹卡/门店/外呼/搜索)",
            )
    return {"channel_id": row.get("channel_id") or row["name"], "name": row["name"], "kind": kind}


def _channel_spend(row: dict[str, str | None]) -> dict[str, Any]:
    if not row.get("channel"):
        raise RowError("channel", None, "channel is empty", "give the channel id or name")
    return {
        "channel": row["channel"],
        "day": parse_date("day", row.get("day")),
        "spend": parse_decimal("spend", row.get("spend"), positive=True),
        "exposures": parse_int("exposures", row.get("exposures")) or 0,
    }


# WeCom add_way codes (shared/reference/wecom.md); admin-console exports show the Chinese label instead.
ADD_WAY_CODES = {
    "未知来源": "0", "扫描二维码": "1", "扫码": "1", "搜索手机号": "2", "名片分享": "3", "群聊": "4",
    "手机通讯录": "5", "微信联系人": "6", "来自微信的添加好友申请": "7", "微信好友申请": "7", "第三方应用": "8",
    "安装第三方应用时自动添加的服务人员": "8", "搜索邮箱": "9", "内部成员共享": "201", "管理员/负责人分配": "202",
    "管理员分配": "202", "负责人分配": "202",
}  # fmt: skip


def parse_add_way(raw: str | None) -> str | None:
    """The WeCom add_way code for a code or a Chinese label; other text is kept as given."""
    if raw is None:
        return None
    text = raw.strip()
    return ADD_WAY_CODES.get(text, text)


_SPLIT = re.compile(r"[,，;；|、/]+")  # remark_mobiles lists; spaces may sit inside one number


def _wecom_contact(row: dict[str, str | None]) -> dict[str, Any]:
    ext = parse_identifier("external_userid", "external_userid", row.get("external_userid"))
    if ext is None:
        raise RowError(
            "external_userid", None, "external_userid is empty", "export contacts with their external_userid"
        )
    if not row.get("follow_userid"):
        raise RowError("follow_userid", None, "follow user (跟进人) is empty", "give the guide's WeCom userid")
    idents = [ext]
    union = parse_identifier("unionid", "unionid", row.get("unionid"))
    if union is not None:
        idents.append(union)
    phones = _SPLIT.split(row.get("remark_mobile") or "")
    for raw in phones:
        if raw:
            phone = parse_identifier("remark_mobile", "phone", raw)
            if phone is not None and phone not in idents:
                idents.append(phone)
    traits: dict[str, Any] = {}
    if row.get("name"):
        traits["name"] = row["name"]
    gender = parse_gender(row.get("gender"))
    if gender:
        traits["gender"] = gender
    for ident in idents:
        if ident.type == "phone":
            traits.setdefault("phone", ident.value)
    if row.get("remark"):
        traits["remark"] = row["remark"]
    tags = [t for t in re.split(r"[,，;；|、]+", row.get("tags") or "") if t.strip()]
    return {
        "external_userid": ext.value,
        "follow_userid": row["follow_userid"],
        "added_at": parse_datetime("added_at", row.get("added_at"), required=False),
        "add_way": parse_add_way(row.get("add_way")),
        "state": row.get("state"),
        "identifiers": idents,
        "traits": traits,
        "tags": [t.strip() for t in tags],
    }


PARSERS = {
    "customers": _customer,
    "orders": _order_line,
    "guides": _guide,
    "stores": _store,
    "channels": _channel,
    "channel_spend": _channel_spend,
    "wecom_contacts": _wecom_contact,
}
