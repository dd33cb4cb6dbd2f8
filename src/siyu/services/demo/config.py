"""Demo brand parameters: the fixed catalogue (stores, guides, channels, products) and the funnel rates.

Everything the generator draws is derived from ``DemoConfig.seed`` with numpy's PCG64, so the same config
always yields the same rows. The window ends at a fixed date (not "now") for the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from siyu.domain.brand_time import day_end_utc, day_start_utc
from siyu.domain.models import ChannelKind, TouchpointKind

BRAND_NAME = "澜颜美妆 Lanyan Beauty"
END_DATE = date(2026, 10, 31)
CHUNK_CUSTOMERS = 50_000  # customers generated per chunk (bounds memory; part of the deterministic recipe)

STORES: tuple[tuple[str, str, str], ...] = (
    ("st_sh", "澜颜 上海静安嘉里中心店", "上海"),
    ("st_hz", "澜颜 杭州湖滨银泰店", "杭州"),
    ("st_cd", "澜颜 成都太古里店", "成都"),
)

GUIDE_NAMES: tuple[str, ...] = (
    "王芳",
    "李娜",
    "张敏",
    "刘洋",
    "陈静",
    "杨丽",
    "赵婷",
    "黄蕾",
    "周雪",
    "吴倩",
    "徐莹",
    "孙悦",
)


@dataclass(frozen=True)
class ChannelSpec:
    """A public channel: how its exposures turn into WeCom adds (or first purchases) and what they cost."""

    channel_id: str
    name: str
    kind: ChannelKind
    share: float  # share of customers acquired through this channel
    rate_low: float  # daily add rate (adds / exposures) is drawn uniformly in [rate_low, rate_high]
    rate_high: float
    cost_per_exposure: float  # yuan
    daily_fixed: float = 0.0  # yuan per day regardless of exposures
    lead_in: str = ""  # channel whose code brings this channel's customers into WeCom ("" = itself)


CHANNELS: tuple[ChannelSpec, ...] = (
    ChannelSpec("ch_ocean", "巨量引擎 信息流广告", ChannelKind.AD_PLATFORM, 0.10, 0.008, 0.015, 0.12),
    ChannelSpec("ch_tmall", "天猫旗舰店", ChannelKind.MARKETPLACE, 0.22, 0.015, 0.030, 0.05, lead_in="ch_parcel"),
    ChannelSpec("ch_jd", "京东自营", ChannelKind.MARKETPLACE, 0.10, 0.015, 0.030, 0.05, lead_in="ch_aicall"),
    ChannelSpec("ch_parcel", "包裹卡", ChannelKind.PARCEL_CARD, 0.10, 0.24, 0.34, 0.75),
    ChannelSpec("ch_store", "门店扫码", ChannelKind.STORE, 0.20, 0.15, 0.25, 0.0, daily_fixed=120.0),
    ChannelSpec("ch_aicall", "智能外呼+短信", ChannelKind.AI_CALL_SMS, 0.08, 0.23, 0.27, 0.42),
    ChannelSpec("ch_referral", "老带新", ChannelKind.REFERRAL, 0.10, 0.30, 0.40, 2.0),
    ChannelSpec("ch_douyin", "抖音短视频", ChannelKind.SHORT_VIDEO, 0.10, 0.006, 0.012, 0.08),
)

GROUPS: tuple[tuple[str, str], ...] = (
    ("tp_group_vip", "澜颜会员福利群"),
    ("tp_group_sh", "澜颜上海美妆交流群"),
    ("tp_group_hz", "澜颜杭州美妆交流群"),
    ("tp_group_cd", "澜颜成都美妆交流群"),
    ("tp_group_skin", "敏感肌护理打卡群"),
    ("tp_group_new", "新人见面礼群"),
)
OWNED_TOUCHPOINTS: tuple[tuple[str, str, TouchpointKind], ...] = (
    ("tp_oa", "澜颜美妆 公众号", TouchpointKind.OFFICIAL_ACCOUNT),
    ("tp_mp", "澜颜美妆 小程序商城", TouchpointKind.MINI_PROGRAM),
    ("tp_sms", "短信", TouchpointKind.SMS),
)

# (sku, name, price in yuan, popularity weight)
PRODUCTS: tuple[tuple[str, str, float, float], ...] = (
    ("LY-SER-30", "澜颜 修护精华液 30ml", 399.0, 10.0),
    ("LY-SER-50", "澜颜 修护精华液 50ml", 599.0, 4.0),
    ("LY-CRM-50", "澜颜 保湿面霜 50g", 459.0, 8.0),
    ("LY-EYE-15", "澜颜 紧致眼霜 15g", 329.0, 5.0),
    ("LY-CLN-120", "澜颜 氨基酸洁面乳 120g", 129.0, 12.0),
    ("LY-TON-150", "澜颜 舒缓爽肤水 150ml", 199.0, 9.0),
    ("LY-LOT-120", "澜颜 平衡乳液 120ml", 229.0, 7.0),
    ("LY-MSK-5", "澜颜 补水面膜 5片装", 99.0, 14.0),
    ("LY-SUN-50", "澜颜 轻薄防晒乳 50ml", 189.0, 8.0),
    ("LY-LIP-01", "澜颜 丝绒口红 #01 正红", 239.0, 6.0),
    ("LY-LIP-07", "澜颜 丝绒口红 #07 豆沙", 239.0, 6.0),
    ("LY-FDN-30", "澜颜 持妆粉底液 30ml", 349.0, 5.0),
    ("LY-CUS-15", "澜颜 气垫 15g", 289.0, 5.0),
    ("LY-OIL-150", "澜颜 卸妆油 150ml", 169.0, 7.0),
    ("LY-SET-GIFT", "澜颜 节日护肤礼盒", 899.0, 2.0),
    ("LY-TRV-KIT", "澜颜 旅行体验装", 59.0, 9.0),
)

CITIES: tuple[str, ...] = (
    "上海",
    "杭州",
    "成都",
    "北京",
    "广州",
    "深圳",
    "南京",
    "苏州",
    "武汉",
    "重庆",
    "西安",
    "长沙",
)
MOBILE_PREFIXES: tuple[int, ...] = (
    130, 131, 132, 133, 135, 136, 137, 138, 139, 150, 151, 152, 155, 156, 157, 158, 159,
    180, 181, 182, 183, 185, 186, 187, 188, 189, 177, 199,
)  # fmt: skip
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎"
GIVEN = "芳娜敏静丽婷蕾雪倩莹悦琳欣怡佳颖晶洁妍彤璐瑶萱涵雯薇晨露菲诗梦琪慧"


@dataclass(frozen=True)
class Rates:
    """Funnel rates the generator reproduces (documented in docs/demo.md)."""

    invited: float = 0.90  # customers who receive a lead-in invitation (SMS / card / in store)
    lead_in_success: float = 0.70  # invited → added a guide within 3 days (引流成功率)
    service_success: float = 0.45  # added → replied to the guide within 7 days (服务成功率)
    monetization: float = 0.25  # added → ordered within 30 days of the add (变现成功率)
    monthly_loss: float = 0.03  # hazard of a relation being lost per 30 days (删粉率)
    lost_by_customer: float = 0.85  # share of losses where the customer deleted the guide
    buyers: float = 0.72  # customers who ever order
    orders_per_customer: float = 4.0  # ≈ orders / customers
    member: float = 0.60
    has_unionid: float = 0.85  # among customers not added on WeCom (all added contacts have a unionid)
    openid: float = 0.50
    anonymous_id: float = 0.40
    group_join: float = 0.35  # added contacts who join a customer group
    duplicate: float = 0.03  # people who first order with a second phone only, identified later by unionid
    broadcast_every_days: float = 21.0
    click: float = 0.18
    reply: float = 0.05
    coupon: float = 0.30  # of clicks
    page_views: float = 3.0  # mean page views per customer
    refunded: float = 0.03


@dataclass(frozen=True)
class DemoConfig:
    """What to generate. ``customers`` × ``orders_per_customer`` ≈ orders."""

    brand_id: str = "demo"
    brand_name: str = BRAND_NAME
    customers: int = 50_000
    seed: int = 42
    months: int = 18
    end: date = END_DATE
    rates: Rates = field(default_factory=Rates)

    @property
    def start(self) -> date:
        """First day of the window: the first of the month ``months - 1`` months before ``end``'s month."""
        y, m = self.end.year, self.end.month - (self.months - 1)
        while m <= 0:
            m += 12
            y -= 1
        return date(y, m, 1)

    @property
    def start_at(self) -> datetime:
        """The window's first instant: local midnight opening ``start``, as naive UTC (times are offsets from it,
        so generated shopping hours are the brand's local hours)."""
        return day_start_utc(self.start)

    @property
    def end_at(self) -> datetime:
        """Exclusive end of the window (local midnight after ``end``), as naive UTC."""
        return day_end_utc(self.end)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def seconds(self) -> int:
        return self.days * 86_400

    def validate(self) -> None:
        """Raise SiyuError naming the bad field."""
        from siyu.services.errors import SiyuError

        if self.customers < 100:
            raise SiyuError("customers must be at least 100 (e.g. --customers 2000)", field="customers")
        if not 1 <= self.months <= 60:
            raise SiyuError("months must be between 1 and 60 (e.g. --months 18)", field="months")
        if self.seed < 0:
            raise SiyuError("seed must be a non-negative integer (e.g. --seed 42)", field="seed")
