"""A brand's sidebar configuration, kept in ``brands.settings["sidebar"]``.

The sidebar is a WeCom self-built app (自建应用) configured in 客户联系 → 聊天工具栏: ``agent_id`` is its AgentId,
``agent_secret`` its Secret (sealed at rest like the other WeCom secrets; empty = use the 客户联系 secret of
``siyu wecom configure``, which works when that app was given customer-contact rights).  ``oauth_base`` is where
the WeCom client's OAuth page lives (``https://open.weixin.qq.com``; the local WeCom server in tests), and
``sdk_urls`` the JS-SDK files the page loads inside WeCom.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy.orm.attributes import flag_modified

from siyu.connectors.wecom.jssdk import JsSdk
from siyu.connectors.wecom.transport import Transport
from siyu.errors import NotFound, SiyuError
from siyu.services import secrets
from siyu.services.context import Context
from siyu.services.wecom.config import get_config
from siyu.stores.state.models import BrandRow

OAUTH_BASE = "https://open.weixin.qq.com"
SDK_URLS = (
    "https://res.wx.qq.com/open/js/jweixin-1.2.0.js",
    "https://open.work.weixin.qq.com/wwopen/js/jwxwork-1.0.0.js",
)


@dataclass(frozen=True)
class SidebarConfig:
    agent_id: str
    agent_secret: str = ""
    oauth_base: str = OAUTH_BASE
    sdk_urls: list[str] = field(default_factory=lambda: list(SDK_URLS))

    def public(self) -> dict[str, Any]:
        d = asdict(self)
        d["agent_secret"] = "***" if self.agent_secret else ""
        return d


def validate(cfg: SidebarConfig) -> SidebarConfig:
    if not cfg.agent_id.isdigit() or len(cfg.agent_id) > 20:
        raise SiyuError("agent_id is the app's AgentId (digits), from 应用管理 → the sidebar app", "agent_id")
    for name, url in [("oauth_base", cfg.oauth_base), *[("sdk_urls", u) for u in cfg.sdk_urls]]:
        if not url.startswith(("http://", "https://")):
            raise SiyuError(f"{name} must be http(s) URLs (got {url!r})", name)
    return cfg


def get_sidebar_config(ctx: Context, brand_id: str) -> SidebarConfig:
    """The brand's sidebar configuration (NotFound when not configured)."""
    with ctx.sessions() as s:
        brand = s.get(BrandRow, brand_id)
        raw = dict((brand.settings or {}).get("sidebar") or {}) if brand else {}
    if not raw:
        raise NotFound(
            f"brand {brand_id!r} has no sidebar configuration; set it with `siyu sidebar configure`", "sidebar"
        )
    if raw.get("agent_secret"):
        raw["agent_secret"] = secrets.open_value(ctx, raw["agent_secret"], "sidebar.agent_secret")
    known = set(SidebarConfig.__dataclass_fields__)
    return SidebarConfig(**{k: v for k, v in raw.items() if k in known})


def set_sidebar_config(ctx: Context, brand_id: str, cfg: SidebarConfig) -> SidebarConfig:
    """Validate and store (the secret sealed)."""
    validate(cfg)
    with ctx.sessions() as s, s.begin():
        brand = s.get(BrandRow, brand_id)
        if brand is None:
            raise NotFound(f"brand {brand_id!r} does not exist", "brand_id")
        stored = asdict(cfg)
        stored["agent_secret"] = secrets.seal(ctx, cfg.agent_secret) if cfg.agent_secret else ""
        brand.settings = {**(brand.settings or {}), "sidebar": stored}
        flag_modified(brand, "settings")
    return cfg


def jssdk_for(ctx: Context, brand_id: str) -> tuple[JsSdk, SidebarConfig, str]:
    """The JS-SDK of the brand's sidebar app, its configuration and the corp id."""
    side = get_sidebar_config(ctx, brand_id)
    wecom = get_config(ctx, brand_id)
    secret = side.agent_secret or wecom.secret
    if not secret:
        raise SiyuError("neither the sidebar app's secret nor the WeCom secret is configured", "agent_secret")
    parts = (brand_id, wecom.corp_id, secret, wecom.api_base, side.agent_id)
    key = "sidebar_jssdk:" + hashlib.sha256("\n".join(parts).encode()).hexdigest()
    sdk = ctx.extras.get(key)  # one client (and HTTP pool) per app configuration; tickets are cached per process
    if not isinstance(sdk, JsSdk):
        sdk = ctx.extras[key] = JsSdk(Transport(wecom.corp_id, secret, wecom.api_base), side.agent_id)
    return sdk, side, wecom.corp_id
