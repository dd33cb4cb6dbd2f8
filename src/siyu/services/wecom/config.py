"""A brand's WeCom configuration, kept in ``brands.settings["wecom"]``.

corp_id (我的企业 → 企业ID), secret (客户联系 secret, for API calls), token and encoding_aes_key (the callback's
Token / EncodingAESKey), api_base (WeCom, or the local server in tests/demo) and replay_window_seconds.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy.orm.attributes import flag_modified

from siyu.connectors.wecom.client import WeComClient
from siyu.connectors.wecom.crypto import WeComCryptoError, WXBizMsgCrypt, decode_key
from siyu.connectors.wecom.transport import DEFAULT_BASE, Transport
from siyu.errors import NotFound, SiyuError
from siyu.services import secrets
from siyu.services.context import Context
from siyu.stores.state.models import BrandRow

REPLAY_WINDOW = 300  # seconds a signed callback timestamp may differ from our clock
_TOKEN_RE = re.compile(r"^[A-Za-z0-9]{3,32}$")


@dataclass(frozen=True)
class WeComConfig:
    corp_id: str
    token: str
    encoding_aes_key: str
    secret: str = ""
    api_base: str = DEFAULT_BASE
    replay_window_seconds: int = REPLAY_WINDOW

    def crypt(self) -> WXBizMsgCrypt:
        return WXBizMsgCrypt(self.token, self.encoding_aes_key, self.corp_id)

    def public(self) -> dict[str, Any]:
        """The configuration with secrets masked (for API/CLI output): only whether each is set and, for the long
        ones, their last 2 characters."""
        d = asdict(self)
        for k in secrets.WECOM_FIELDS:
            d[k] = ("…" + d[k][-2:] if len(d[k]) >= 16 else "***") if d[k] else ""
        return d


def validate(cfg: WeComConfig) -> WeComConfig:
    """Raise a SiyuError naming the field when the configuration cannot work."""
    if not cfg.corp_id.strip():
        raise SiyuError("corp_id is empty: copy 企业ID from 我的企业 → 企业信息", field="corp_id")
    if not _TOKEN_RE.match(cfg.token):
        raise SiyuError("token must be 3-32 letters or digits (the callback Token in the WeCom console)", "token")
    try:
        decode_key(cfg.encoding_aes_key)
    except WeComCryptoError as err:
        raise SiyuError(str(err), field="encoding_aes_key") from err
    if not cfg.api_base.startswith(("http://", "https://")):
        raise SiyuError("api_base must be an http(s) URL, e.g. https://qyapi.weixin.qq.com", field="api_base")
    if not 10 <= cfg.replay_window_seconds <= 3600:
        raise SiyuError("replay_window_seconds must be 10..3600", field="replay_window_seconds")
    return cfg


def get_config(ctx: Context, brand_id: str) -> WeComConfig:
    """The brand's WeCom configuration (NotFound when not configured)."""
    with ctx.sessions() as s:
        brand = s.get(BrandRow, brand_id)
        raw = (brand.settings or {}).get("wecom") if brand else None
    if not raw:
        raise NotFound(f"brand {brand_id!r} has no WeCom configuration; set it with `siyu wecom configure`", "wecom")
    if secrets.has_plain(raw, secrets.WECOM_FIELDS):  # stored before encryption at rest: encrypt it now
        secrets.reseal_all(ctx)
    known = set(WeComConfig.__dataclass_fields__)
    values = {k: v for k, v in raw.items() if k in known}
    for k in secrets.WECOM_FIELDS:
        if values.get(k):
            values[k] = secrets.open_value(ctx, values[k], f"wecom.{k}")
    return WeComConfig(**values)


def set_config(ctx: Context, brand_id: str, cfg: WeComConfig) -> WeComConfig:
    """Validate and store the brand's WeCom configuration."""
    validate(cfg)
    with ctx.sessions() as s, s.begin():
        brand = s.get(BrandRow, brand_id)
        if brand is None:
            raise NotFound(f"brand {brand_id!r} does not exist", "brand_id")
        stored = asdict(cfg)
        for k in secrets.WECOM_FIELDS:
            stored[k] = secrets.seal(ctx, stored[k])
        brand.settings = {**(brand.settings or {}), "wecom": stored}
        flag_modified(brand, "settings")
    return cfg


def client_for(cfg: WeComConfig) -> WeComClient:
    """An API client for the brand's app (needs ``secret``)."""
    if not cfg.secret:
        raise SiyuError("the WeCom secret is not configured (客户联系 → API → Secret)", field="secret")
    return WeComClient(Transport(cfg.corp_id, cfg.secret, cfg.api_base))
